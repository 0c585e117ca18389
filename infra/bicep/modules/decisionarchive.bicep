// The decision archive (FRAUD_ARCHIVE_CONTAINER): every decision the app made, as Parquet
// under decisions/date=YYYY-MM-DD/hour=HH/, written once by the archive timer and never
// overwritten (a late hour gets a further part file). A bank must be able to show the record
// was not altered, so the container is write-once-read-many:
//
//   - version-level immutability (immutableStorageWithVersioning) on the container, which
//     needs blob versioning on the account (storage.bicep enableVersioning, set for the data
//     account). It needs no change feed; change feed is for point-in-time restore.
//   - a time-based retention policy, the container's default for every blob version: no
//     version can be deleted or overwritten until it is retentionDays old. New blobs can
//     still be written, and lifecycle tiering (Cool, Archive) is allowed on immutable blobs.
//
// ARM deploys the policy *unlocked*: it can still be shortened or removed, which is what dev
// wants. Production locks it after review, outside the template, because a locked policy
// can never be shortened or deleted, only extended (docs/DEPLOY.md):
//   az storage container immutability-policy lock --account-name <data account> \
//     -c decision-archive --if-match "$(az storage container immutability-policy show \
//     --account-name <data account> -c decision-archive --query etag -o tsv)"
// Once locked, redeploying the template with the same or a longer retentionDays is fine;
// a shorter one fails.

@description('Name of the data storage account (versioning enabled; created by storage.bicep).')
param storageAccountName string

@description('Container name (FRAUD_ARCHIVE_CONTAINER).')
param containerName string

@description('Days each archived blob version stays immutable (2,555 = 7 years in production).')
@minValue(1)
@maxValue(146000)
param retentionDays int

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource archiveContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
    immutableStorageWithVersioning: {
      enabled: true
    }
  }
}

resource retentionPolicy 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = {
  parent: archiveContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: retentionDays
    // the archive writes whole Parquet block blobs; nothing is appended to a protected blob
    allowProtectedAppendWrites: false
    allowProtectedAppendWritesAll: false
  }
}

output containerName string = archiveContainer.name
