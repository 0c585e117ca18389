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
//
// Network: two shapes of the same hardened account, exactly one deployed.
//   - privateNetworking (production): public network access disabled, network ACLs deny,
//     and a private endpoint per storage service in privateEndpointServices, registered in
//     network.bicep's private DNS zones. The app reaches it through its VNet integration.
//   - public (dev): a developer's laptop, `func publish` and the Flex app without VNet
//     integration reach the account over its public endpoint; access still needs an Entra
//     identity with a data role (no shared key, no anonymous blob). checkov's network checks
//     are skipped on this shape only (storageaccount-public.bicep); the production one
//     (storageaccount.bicep) is checked in full.

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

@description('Days deleted containers stay recoverable (container soft delete).')
@minValue(1)
@maxValue(365)
param containerSoftDeleteDays int = 14

@description('Blob change feed (a log of every blob change, kept indefinitely): an audit trail of who changed which blob; also what point-in-time restore needs.')
param enableChangeFeed bool = false

@description('Production shape: private endpoints, public network access disabled (see above).')
param privateNetworking bool = false

@description('privateNetworking: subnet of the private endpoints (network.bicep endpointSubnetId).')
param privateEndpointSubnetId string = ''

@description('privateNetworking: private DNS zone id per service, {blob: ..., queue: ..., table: ...} (network.bicep privateDnsZoneIds).')
param privateDnsZoneIds object = {}

@description('privateNetworking: the storage services that get a private endpoint (those the account serves).')
param privateEndpointServices array = [
  'blob'
  'queue'
  'table'
]

@description('Tags for every resource.')
param tags object = {}

// Exactly one shape of the account (see above), each a module of its own so checkov checks it.
module account 'storageaccount.bicep' = if (privateNetworking) {
  name: 'account-${name}'
  params: {
    location: location
    name: name
    skuName: skuName
    tags: tags
  }
}

module publicAccount 'storageaccount-public.bicep' = if (!privateNetworking) {
  name: 'account-public-${name}'
  params: {
    location: location
    name: name
    skuName: skuName
    tags: tags
  }
}

var accountId = resourceId('Microsoft.Storage/storageAccounts', name)

// The services are children of whichever shape was deployed (named, not parented, for that).
resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  name: '${name}/default'
  dependsOn: [
    account
    publicAccount
  ]
  properties: {
    isVersioningEnabled: enableVersioning
    changeFeed: {
      enabled: enableChangeFeed
    }
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: containerSoftDeleteDays
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
  name: '${name}/default'
  dependsOn: [
    account
    publicAccount
  ]
}

resource storageTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for table in tables: {
  parent: tableService
  name: table
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  name: '${name}/default'
  dependsOn: [
    account
    publicAccount
  ]
}

resource storageQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queue in queues: {
  parent: queueService
  name: queue
}]

resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = if (!empty(lifecycleRules)) {
  name: '${name}/default'
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

// Private endpoints (production shape), one per service, each registered in its private DNS zone.
resource privateEndpoints 'Microsoft.Network/privateEndpoints@2023-11-01' = [for service in privateEndpointServices: if (privateNetworking) {
  name: 'pe-${name}-${service}'
  location: location
  tags: tags
  dependsOn: [
    account
  ]
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: '${name}-${service}'
        properties: {
          privateLinkServiceId: accountId
          groupIds: [
            service
          ]
        }
      }
    ]
  }
}]

resource privateDnsZoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = [for (service, i) in privateEndpointServices: if (privateNetworking) {
  parent: privateEndpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: service
        properties: {
          privateDnsZoneId: privateDnsZoneIds[service]
        }
      }
    ]
  }
}]

output id string = accountId
output name string = name
// the endpoints follow from the name (either shape); the private DNS zones map them privately
output blobEndpoint string = 'https://${name}.blob.${environment().suffixes.storage}/'
output queueEndpoint string = 'https://${name}.queue.${environment().suffixes.storage}/'
output tableEndpoint string = 'https://${name}.table.${environment().suffixes.storage}/'
