// One hardened StorageV2 account with the containers, tables and queues it is given. main.bicep
// deploys it for each of the app's accounts (issue #15):
//   - the host account (AzureWebJobsStorage): the Flex deployment package, and what the
//     Functions host creates itself (leases, Event Hubs checkpoints, blob-trigger receipts,
//     diagnostic events);
//   - the data account (FRAUD_DATA_STORAGE): every app table, container and queue;
//   - profileAccountCount profile accounts (FRAUD_PROFILE_STORAGE_<i>): a `profiles` table each.
//
// Shared-key access is disabled on all of them: the app, the Functions host and the Flex
// deployment authenticate with the user-assigned identity, so no account key is ever needed.

@description('Azure region.')
param location string

@description('Storage account name (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Replication. ZRS or GZRS for production; LRS is enough for dev. The Archive tier exists only on LRS, GRS and RA-GRS.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_ZRS'

@description('Blob containers to create.')
param containers array = []

@description('Tables to create.')
param tables array = []

@description('Queues to create.')
param queues array = []

@description('Days deleted blobs and containers stay recoverable (soft delete).')
@minValue(1)
@maxValue(365)
param softDeleteDays int = 14

@description('Keep a previous version of a blob at each overwrite or delete: the model registry pointer\'s history, and what version-level immutability needs (the decision archive). Old versions go by lifecycleRules.')
param enableVersioning bool = false

@description('Lifecycle management rules (Microsoft.Storage/storageAccounts/managementPolicies rules); empty: no policy.')
param lifecycleRules array = []

@description('Tags for every resource.')
param tags object = {}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  //checkov:skip=CKV_AZURE_206: Replication is the skuName parameter: GZRS in main.prod.parameters.json, LRS only in dev.
  //checkov:skip=CKV_AZURE_35: Network default action stays Allow until the app is VNet-integrated: the Flex app without VNet integration, the deployment path and operators reach the account over its public endpoint. Access is Entra-only (allowSharedKeyAccess false, no anonymous blobs). Private endpoints are the documented next step (docs/DEPLOY.md).
  //checkov:skip=CKV_AZURE_59: Public network access is needed without VNet integration (see CKV_AZURE_35); neither key nor anonymous access is possible.
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    isLocalUserEnabled: false
    isSftpEnabled: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    isVersioningEnabled: enableVersioning
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
  }
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in containers: {
  parent: blobService
  name: container
  properties: {
    publicAccess: 'None'
  }
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource storageTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for table in tables: {
  parent: tableService
  name: table
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource storageQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queue in queues: {
  parent: queueService
  name: queue
}]

resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = if (!empty(lifecycleRules)) {
  parent: account
  name: 'default'
  // the rules name containers; they must exist (and versioning be on) before the policy
  dependsOn: [
    blobService
    blobContainers
  ]
  properties: {
    policy: {
      rules: lifecycleRules
    }
  }
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
