// Fraud scoring: the Azure resources of the Function App (Python v2 programming model) on
// the Flex Consumption plan. Deploy into an existing resource group (docs/DEPLOY.md):
//
//   az deployment group create -g <rg> -f infra/bicep/main.bicep -p @infra/bicep/main.dev.parameters.json
//
// No secret, key or connection string with a key appears here: every connection is
// identity-based (the user-assigned identities of identity.bicep) and tests/integration/test_infra_bicep.py
// checks that, and that every app setting the code reads (shared/config.py) is set. The two
// secrets the app needs (the pseudonym key, the alert webhook URL) are Key Vault references.
//
// Security shape (issue #16, tests/integration/test_infra_security.py): analysts sign in with
// Entra ID (authsettingsV2 in functionapp.bicep), machines keep function keys; two identities
// (scoring reads the model registry, release writes it) with roles scoped to single containers,
// tables and queues (roles.bicep); releases signed with an HSM key in Key Vault (keyvault.bicep);
// in production (privateNetworking) VNet integration and private endpoints for every account,
// the Event Hubs namespace and the vault, their public access disabled (network.bicep).

targetScope = 'resourceGroup'

@description('Short environment name, part of every resource name (e.g. dev, test, prod).')
@minLength(2)
@maxLength(8)
param environmentName string

@description('Short workload name, part of every resource name (lowercase letters, digits, hyphens).')
@minLength(2)
@maxLength(12)
param baseName string = 'fraud'

@description('Azure region: one where Flex Consumption is available (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Tags for every resource.')
param tags object = {}

// --- Function App (Flex Consumption) ---------------------------------------------------

@description('Python version of the app (Flex Consumption: 3.11 or 3.12; the app is tested on 3.11).')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('Instance memory in MB. 2048 recommended (onnxruntime + the model); 512 is too small for the model.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Ceiling on the app\'s instances (1-1000). With the Event Hub trigger, no more than the partition count do scoring work at once.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Always-ready instances per function group, e.g. [{"name": "function:score_stream", "instanceCount": 2}, {"name": "http", "instanceCount": 1}]. Empty: scale to zero.')
param alwaysReady array = []

@description('Concurrent HTTP requests per instance; 0 keeps the platform default.')
@minValue(0)
@maxValue(1000)
param httpPerInstanceConcurrency int = 0

@description('Zone-redundant Flex Consumption plan (regions that support it only). The platform then keeps at least 2 always-ready instances per function group.')
param zoneRedundant bool = false

// --- Sign-in, releases, network (issue #16) -------------------------------------------------

@description('Client id of the Entra ID app registration analysts sign in to, with app roles Fraud.Analyst and Fraud.Admin (docs/DEPLOY.md: register it first). Required: pass it with -p entraClientId=<id>.')
@minLength(36)
@maxLength(36)
param entraClientId string

@description('Tenant id of that app registration.')
param entraTenantId string = tenant().tenantId

@description('Optional: object id of the release approvers (the group whose members hold Fraud.Admin): Key Vault Crypto User on the release key and write access to the model registry, for python -m tools.models approve. Empty: grant it later (docs/DEPLOY.md).')
param releaseApproverPrincipalId string = ''

@description('Principal type of releaseApproverPrincipalId.')
@allowed([
  'Group'
  'User'
  'ServicePrincipal'
])
param releaseApproverPrincipalType string = 'Group'

@description('FRAUD_PSEUDONYM_KEY: the HMAC key of the pseudonyms, base64 of 32 random bytes. Pass it on the FIRST deployment only, generated at deploy time (-p pseudonymKey="$(openssl rand -base64 32)"), or let infra/post-deploy.sh create it; never in a parameter file. A later value re-keys every pseudonym.')
@secure()
param pseudonymKey string = ''

@description('Production network shape: VNet integration of the Function App, private endpoints (and private DNS zones) for the host, data and profile accounts, the Event Hubs namespace and the Key Vault, their public network access disabled. Dev (false) keeps public endpoints: no VNet reaches a developer\'s laptop; every call still needs an Entra identity with a role (no keys).')
param privateNetworking bool = false

// --- Event Hubs -------------------------------------------------------------------------

@description('Event Hubs tier: Standard (throughput units) or Premium (processing units).')
@allowed([
  'Standard'
  'Premium'
])
param eventHubsSku string = 'Standard'

@description('Throughput units (Standard) or processing units (Premium).')
@minValue(1)
@maxValue(40)
param eventHubsCapacity int = 1

@description('Standard: auto-inflate throughput units up to eventHubsMaxThroughputUnits.')
param eventHubsAutoInflate bool = false

@description('Standard with auto-inflate: the ceiling of throughput units.')
@minValue(0)
@maxValue(40)
param eventHubsMaxThroughputUnits int = 0

@description('Partitions of the transactions hub (Standard: at most 32). The ceiling on parallel scoring instances; cannot be lowered later.')
@minValue(1)
@maxValue(100)
param eventHubPartitionCount int = 4

@description('Days the hub keeps events (Standard: 1-7).')
@minValue(1)
@maxValue(90)
param eventHubRetentionDays int = 1

@description('Optional: object id of the bank\'s transaction producer (service principal or managed identity), granted Azure Event Hubs Data Sender on the hub.')
param producerPrincipalId string = ''

@description('Principal type of producerPrincipalId.')
@allowed([
  'ServicePrincipal'
  'User'
  'Group'
])
param producerPrincipalType string = 'ServicePrincipal'

// --- Storage and monitoring ------------------------------------------------------------

@description('Replication of the host account (AzureWebJobsStorage) and the profile accounts (Standard_ZRS/GZRS for production).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_ZRS'

@description('Replication of the data account (FRAUD_DATA_STORAGE). The audit write and the alert queue are on the scoring path, so production wants zone redundancy (ZRS/GZRS); but the Archive tier exists only on LRS, GRS and RA-GRS, so on a zone-redundant account the decision archive goes to Cold instead of Archive after decisionArchiveArchiveAfterDays.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param dataStorageSku string = 'Standard_ZRS'

@description('Extra storage accounts the customer profiles are sharded over (FRAUD_PROFILE_ACCOUNTS), each with a `profiles` table; 0: profiles stay in the data account. Size it from docs/CAPACITY.md: one account takes about 14,000 entities/s at 70 % of its 20,000 target; profiles cost about 3 entities per transaction, so 10,000 tx/s needs 3.')
@minValue(0)
@maxValue(16)
param profileAccountCount int = 0

@description('Days deleted blobs (and overwritten ones, with versioning) stay recoverable.')
@minValue(1)
@maxValue(365)
param blobSoftDeleteDays int = 14

@description('Days deleted containers stay recoverable.')
@minValue(1)
@maxValue(365)
param containerSoftDeleteDays int = 14

@description('Blob change feed on the data account: a log of every change to every data blob (who wrote or deleted what, when), kept indefinitely.')
param dataChangeFeed bool = false

@description('Days previous blob versions (e.g. of the model registry pointer) are kept on the data account, in every container but the decision archive (whose versions its immutability policy keeps).')
@minValue(1)
param blobVersionRetentionDays int = 90

@description('Days each decision-archive blob stays immutable (time-based retention, version-level WORM). 2,555 = 7 years for production; deployed unlocked: production locks it after review (docs/DEPLOY.md), after which it can never be shortened.')
@minValue(1)
@maxValue(146000)
param decisionArchiveRetentionDays int = 2555

@description('Days after which decision-archive blobs move from Hot to Cool.')
@minValue(1)
param decisionArchiveCoolAfterDays int = 30

@description('Days after which decision-archive blobs move to Archive (Cold when dataStorageSku is zone-redundant, where Archive does not exist).')
@minValue(1)
param decisionArchiveArchiveAfterDays int = 180

@description('Days the hourly decision-staging append blobs are kept: the archive timer has compacted them into Parquet within the hour, so this is only a window to re-run a compaction.')
@minValue(1)
param decisionStagingRetentionDays int = 14

@description('Days training-sample blobs are kept; more than FRAUD_RETRAIN_LOOKBACK_DAYS (30), the window the retrain reads.')
@minValue(1)
param trainingSampleRetentionDays int = 45

@description('Days dead-lettered events are kept: the lifecycle rule on dead-letter and the app setting FRAUD_DEAD_LETTER_RETENTION_DAYS (the retention timer) both use it.')
@minValue(1)
param deadLetterRetentionDays int = 30

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

// --- App settings --------------------------------------------------------------------------

@description('Values for the app\'s plain settings (names from shared/config.py), overriding the defaults below, e.g. {"FRAUD_DEFAULT_CURRENCY": "KES"}.')
param appSettingOverrides object = {}

@description('FRAUD_ALERT_WEBHOOK_URL: the alert webhook URL carries its own credential, so pass it at deploy time from a secret store (-p alertWebhookUrl=...), never in a parameter file.')
@secure()
param alertWebhookUrl string = ''

// --- Names -----------------------------------------------------------------------------------

var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var prefix = toLower('${baseName}-${environmentName}')
// storage account names: 3-24 lowercase letters and digits; the token keeps them unique
var storageBaseName = replace(baseName, '-', '')
var storageAccountName = take(toLower('st${storageBaseName}${environmentName}${token}'), 24)
var dataStorageAccountName = take(toLower('stdata${token}${storageBaseName}${environmentName}'), 24)
var functionAppName = 'func-${prefix}-${token}'
// Key Vault names: 3-24 letters, digits and hyphens, starting with a letter; the token first
// so the cut never loses it
var keyVaultName = take(toLower('kv${token}${storageBaseName}${environmentName}'), 24)
var deploymentContainerName = 'app-package'
var eventHubName = 'transactions'
var consumerGroupName = 'fraud-scoring'

// The profile accounts: FRAUD_PROFILE_STORAGE_1..N, the names FRAUD_PROFILE_ACCOUNTS lists.
// Their table endpoints follow from their names, so the app settings need no module output.
var profileAccounts = [for i in range(1, profileAccountCount): {
  setting: 'FRAUD_PROFILE_STORAGE_${i}'
  name: take(toLower('stprof${i}${token}${storageBaseName}${environmentName}'), 24)
}]
var profileConnectionNames = [for account in profileAccounts: account.setting]
var profileConnections = [for account in profileAccounts: {
  setting: account.setting
  tableServiceUri: 'https://${account.name}.table.${environment().suffixes.storage}/'
}]

// The host account keeps only what the Functions host needs: the Flex deployment package
// (the host creates its own azure-webjobs-* containers for leases and checkpoints).
var hostContainers = [
  deploymentContainerName
]

// The app's data (shared/config.py defaults), all on the data account. The decision archive
// is created by decisionarchive.bicep (it needs immutability set when it is created).
var profileTableName = 'profiles'
var archiveContainerName = 'decision-archive'
var stagingContainerName = 'decision-staging'
var trainingSampleContainerName = 'training-sample'
var deadLetterContainerName = 'dead-letter'
// containers whose blobs stay (their old versions expire), then those whose blobs expire
var keptContainers = [
  modelContainerName
  'labels'
  'monitoring'
  'training-data'
  'retrain-requests'
]
var dataContainers = concat(keptContainers, [
  stagingContainerName
  trainingSampleContainerName
  deadLetterContainerName
])
var dataTables = [
  profileTableName
  'scores'
  'merchantrisk'
  'labels'
  'monitoraggregates'
]
// the alert queue, and the blob triggers' poison queue (on the trigger connection's account)
var alertQueueName = 'fraud-alerts'
var dataQueues = [
  alertQueueName
  'webjobs-blobtrigger-poison'
]
// Least privilege on the data account (roles.bicep): the app identity only READS the model
// registry and the training data; it writes these (the archive write-once by its policy)
var modelContainerName = 'models'
var appReadContainers = [
  'training-data'
]
var appWriteContainers = [
  'labels'
  'monitoring'
  'retrain-requests'
  stagingContainerName
  trainingSampleContainerName
  deadLetterContainerName
  archiveContainerName
]

// Lifecycle of the data account's blobs. Delete rules also remove the previous version a
// delete leaves behind (versioning is on), a day later, so expired data really goes.
var archiveTierSupported = contains([
  'Standard_LRS'
  'Standard_GRS'
  'Standard_RAGRS'
], dataStorageSku)
var archiveTierAction = {
  tierToArchive: {
    daysAfterModificationGreaterThan: decisionArchiveArchiveAfterDays
  }
}
var coldTierAction = {
  tierToCold: {
    daysAfterModificationGreaterThan: decisionArchiveArchiveAfterDays
  }
}
// Old versions expire everywhere but in the decision archive, whose immutability policy keeps
// them: in the kept containers after blobVersionRetentionDays, in the expiring ones (their
// own rules) a day after the delete that made them.
var versionedPrefixes = [for container in keptContainers: '${container}/']
var dataLifecycleRules = [
  {
    name: 'decision-archive-tiers'
    enabled: true
    type: 'Lifecycle'
    definition: {
      filters: {
        blobTypes: [
          'blockBlob'
        ]
        prefixMatch: [
          '${archiveContainerName}/'
        ]
      }
      actions: {
        baseBlob: union({
          tierToCool: {
            daysAfterModificationGreaterThan: decisionArchiveCoolAfterDays
          }
        }, archiveTierSupported ? archiveTierAction : coldTierAction)
      }
    }
  }
  {
    name: 'decision-staging-expiry'
    enabled: true
    type: 'Lifecycle'
    definition: {
      filters: {
        blobTypes: [
          'blockBlob'
          'appendBlob'
        ]
        prefixMatch: [
          '${stagingContainerName}/'
        ]
      }
      actions: {
        baseBlob: {
          delete: {
            daysAfterModificationGreaterThan: decisionStagingRetentionDays
          }
        }
        version: {
          delete: {
            daysAfterCreationGreaterThan: 1
          }
        }
      }
    }
  }
  {
    name: 'training-sample-expiry'
    enabled: true
    type: 'Lifecycle'
    definition: {
      filters: {
        blobTypes: [
          'blockBlob'
          'appendBlob'
        ]
        prefixMatch: [
          '${trainingSampleContainerName}/'
        ]
      }
      actions: {
        baseBlob: {
          delete: {
            daysAfterModificationGreaterThan: trainingSampleRetentionDays
          }
        }
        version: {
          delete: {
            daysAfterCreationGreaterThan: 1
          }
        }
      }
    }
  }
  {
    name: 'dead-letter-expiry'
    enabled: true
    type: 'Lifecycle'
    definition: {
      filters: {
        blobTypes: [
          'blockBlob'
          'appendBlob'
        ]
        prefixMatch: [
          '${deadLetterContainerName}/'
        ]
      }
      actions: {
        baseBlob: {
          delete: {
            daysAfterModificationGreaterThan: deadLetterRetentionDays
          }
        }
        version: {
          delete: {
            daysAfterCreationGreaterThan: 1
          }
        }
      }
    }
  }
  {
    name: 'old-versions-expiry'
    enabled: true
    type: 'Lifecycle'
    definition: {
      filters: {
        blobTypes: [
          'blockBlob'
          'appendBlob'
        ]
        prefixMatch: versionedPrefixes
      }
      actions: {
        version: {
          delete: {
            daysAfterCreationGreaterThan: blobVersionRetentionDays
          }
        }
      }
    }
  }
]
module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    location: location
    name: 'id-${prefix}-${token}'
    releaseName: 'id-${prefix}-release-${token}'
    tags: tags
  }
}

module network 'modules/network.bicep' = if (privateNetworking) {
  name: 'network'
  params: {
    location: location
    name: 'vnet-${prefix}-${token}'
    tags: tags
  }
}

// what every private endpoint needs; empty in the public (dev) shape
var endpointSubnetId = privateNetworking ? network.outputs.endpointSubnetId : ''
var privateDnsZoneIds = privateNetworking ? network.outputs.privateDnsZoneIds : {}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    name: keyVaultName
    appPrincipalId: identity.outputs.principalId
    releasePrincipalId: identity.outputs.releasePrincipalId
    releaseApproverPrincipalId: releaseApproverPrincipalId
    releaseApproverPrincipalType: releaseApproverPrincipalType
    pseudonymKey: pseudonymKey
    alertWebhookUrl: alertWebhookUrl
    privateNetworking: privateNetworking
    privateEndpointSubnetId: endpointSubnetId
    privateDnsZoneId: privateNetworking ? privateDnsZoneIds.vault : ''
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    workspaceName: 'log-${prefix}-${token}'
    appInsightsName: 'appi-${prefix}-${token}'
    retentionInDays: logRetentionDays
    tags: tags
  }
}

module hostStorage 'modules/storage.bicep' = {
  name: 'host-storage'
  params: {
    location: location
    name: storageAccountName
    skuName: storageSku
    containers: hostContainers
    tables: []
    queues: []
    softDeleteDays: blobSoftDeleteDays
    containerSoftDeleteDays: containerSoftDeleteDays
    enableVersioning: false
    lifecycleRules: []
    privateNetworking: privateNetworking
    privateEndpointSubnetId: endpointSubnetId
    privateDnsZoneIds: privateDnsZoneIds
    tags: tags
  }
}

module dataStorage 'modules/storage.bicep' = {
  name: 'data-storage'
  params: {
    location: location
    name: dataStorageAccountName
    skuName: dataStorageSku
    containers: dataContainers
    tables: dataTables
    queues: dataQueues
    softDeleteDays: blobSoftDeleteDays
    containerSoftDeleteDays: containerSoftDeleteDays
    enableVersioning: true
    enableChangeFeed: dataChangeFeed
    lifecycleRules: dataLifecycleRules
    privateNetworking: privateNetworking
    privateEndpointSubnetId: endpointSubnetId
    privateDnsZoneIds: privateDnsZoneIds
    tags: tags
  }
}

module decisionArchive 'modules/decisionarchive.bicep' = {
  name: 'decision-archive'
  params: {
    storageAccountName: dataStorage.outputs.name
    containerName: archiveContainerName
    retentionDays: decisionArchiveRetentionDays
  }
}

module profileStorage 'modules/storage.bicep' = [for account in profileAccounts: {
  name: 'profile-storage-${account.name}'
  params: {
    location: location
    name: account.name
    skuName: storageSku
    containers: []
    tables: [
      profileTableName
    ]
    queues: []
    softDeleteDays: blobSoftDeleteDays
    containerSoftDeleteDays: containerSoftDeleteDays
    enableVersioning: false
    lifecycleRules: []
    privateNetworking: privateNetworking
    privateEndpointSubnetId: endpointSubnetId
    privateDnsZoneIds: privateDnsZoneIds
    // the account holds only the profiles table
    privateEndpointServices: [
      'table'
    ]
    tags: tags
  }
}]

module eventHubs 'modules/eventhubs.bicep' = {
  name: 'eventhubs'
  params: {
    location: location
    namespaceName: 'evhns-${prefix}-${token}'
    skuName: eventHubsSku
    capacity: eventHubsCapacity
    autoInflate: eventHubsAutoInflate
    maximumThroughputUnits: eventHubsMaxThroughputUnits
    eventHubName: eventHubName
    partitionCount: eventHubPartitionCount
    messageRetentionInDays: eventHubRetentionDays
    consumerGroupName: consumerGroupName
    privateNetworking: privateNetworking
    privateEndpointSubnetId: endpointSubnetId
    privateDnsZoneId: privateNetworking ? privateDnsZoneIds.namespace : ''
    tags: tags
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  // the containers, tables and queues each role is scoped to must exist first
  dependsOn: [
    decisionArchive
  ]
  params: {
    appPrincipalId: identity.outputs.principalId
    releasePrincipalId: identity.outputs.releasePrincipalId
    releaseApproverPrincipalId: releaseApproverPrincipalId
    releaseApproverPrincipalType: releaseApproverPrincipalType
    producerPrincipalId: producerPrincipalId
    producerPrincipalType: producerPrincipalType
    hostStorageAccountName: hostStorage.outputs.name
    dataStorageAccountName: dataStorage.outputs.name
    modelContainerName: modelContainerName
    appWriteContainers: appWriteContainers
    appReadContainers: appReadContainers
    appTables: dataTables
    appQueues: dataQueues
    eventHubsNamespaceName: eventHubs.outputs.namespaceName
    eventHubName: eventHubs.outputs.eventHubName
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module profileRoles 'modules/profileroles.bicep' = [for (account, i) in profileAccounts: {
  name: 'profile-roles-${account.name}'
  params: {
    appPrincipalId: identity.outputs.principalId
    storageAccountName: profileStorage[i].outputs.name
    tableName: profileTableName
  }
}]

// Every setting of shared/config.py SETTINGS. Connection settings in identity form
// (<NAME>__<property>); plain settings with the registry's defaults (override them with
// appSettingOverrides). tests/integration/test_infra_bicep.py keeps this in step with the registry.
var appSettings = {
  AzureWebJobsStorage__blobServiceUri: hostStorage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: hostStorage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: hostStorage.outputs.tableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  FRAUD_DATA_STORAGE__blobServiceUri: dataStorage.outputs.blobEndpoint
  FRAUD_DATA_STORAGE__queueServiceUri: dataStorage.outputs.queueEndpoint
  FRAUD_DATA_STORAGE__tableServiceUri: dataStorage.outputs.tableEndpoint
  FRAUD_DATA_STORAGE__credential: 'managedidentity'
  FRAUD_DATA_STORAGE__clientId: identity.outputs.clientId
  FRAUD_PROFILE_ACCOUNTS: join(profileConnectionNames, ',')
  FRAUD_MODEL_STORAGE__blobServiceUri: dataStorage.outputs.blobEndpoint
  FRAUD_MODEL_STORAGE__credential: 'managedidentity'
  // the one connection of the release identity: the retraining function's registry writes
  FRAUD_MODEL_STORAGE__clientId: identity.outputs.releaseClientId
  EventHubConnection__fullyQualifiedNamespace: eventHubs.outputs.fullyQualifiedNamespace
  EventHubConnection__credential: 'managedidentity'
  EventHubConnection__clientId: identity.outputs.clientId
  EVENTHUB_NAME: eventHubs.outputs.eventHubName
  EVENTHUB_CONSUMER_GROUP: eventHubs.outputs.consumerGroupName
  FRAUD_DEFAULT_CURRENCY: 'NGN'
  FRAUD_MAX_AMOUNT: '1000000000'
  FRAUD_MODEL_CONTAINER: modelContainerName
  FRAUD_MODEL_REFRESH_SECONDS: '60'
  FRAUD_HIGH_THRESHOLD: ''
  FRAUD_MEDIUM_THRESHOLD: ''
  FRAUD_ALERT_THRESHOLD: ''
  FRAUD_RULES: ''
  FRAUD_RULES_BLOB: ''
  FRAUD_PROFILE_TABLE: 'profiles'
  FRAUD_PROFILE_CACHE_SIZE: '20000'
  FRAUD_AUDIT_TABLE: 'scores'
  FRAUD_AUDIT_SHARDS: '8'
  FRAUD_ALERT_QUEUE: alertQueueName
  // a Key Vault reference when a webhook URL was given (the URL itself never reaches a setting)
  FRAUD_ALERT_WEBHOOK_URL: empty(alertWebhookUrl) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.alertWebhookSecretUri})'
  FRAUD_DEAD_LETTER_CONTAINER: 'dead-letter'
  FRAUD_LABEL_TABLE: 'labels'
  FRAUD_LABELS_CONTAINER: 'labels'
  FRAUD_MONITORING_CONTAINER: 'monitoring'
  FRAUD_RETRAIN_CONTAINER: 'retrain-requests'
  FRAUD_MONITOR_SCHEDULE: '0 */15 * * * *'
  FRAUD_MONITOR_WINDOW_HOURS: '24'
  FRAUD_PSI_WARN: '0.1'
  FRAUD_PSI_ALERT: '0.2'
  FRAUD_DRIFT_MIN_BIN_ROWS: '20'
  FRAUD_RETRAIN_MIN_RECALL: '0.5'
  FRAUD_RETRAIN_MIN_LABELLED_FRAUD: '20'
  FRAUD_RETRAIN_COOLDOWN_HOURS: '24'
  FRAUD_MERCHANT_TABLE: 'merchantrisk'
  FRAUD_MERCHANT_CACHE_SECONDS: '600'
  FRAUD_LABEL_DELAY_DAYS: '7'
  FRAUD_LABEL_MATURITY_DAYS: ''
  FRAUD_TRAINING_CONTAINER: 'training-data'
  FRAUD_RETRAIN_MAX_ROWS: '300000'
  FRAUD_RETRAIN_SEARCH_CANDIDATES: '3'
  FRAUD_RETRAIN_LOOKBACK_DAYS: '30'
  FRAUD_PROMOTION_MIN_AP_GAIN: '0.005'
  FRAUD_PROMOTION_MAX_ALERT_RATIO: '1.25'
  FRAUD_PROMOTION_MAX_ALERTS_PER_DAY: ''
  FRAUD_PROMOTION_MAX_ECE_INCREASE: '0.01'
  FRAUD_PROMOTION_TOP_K: '20'
  FRAUD_HTTP_MAX_BODY_BYTES: '65536'
  FRAUD_STORAGE_RETRIES: '5'
  FRAUD_STORAGE_TRANSPORT: 'lean'
  FRAUD_AGGREGATE_TABLE: 'monitoraggregates'
  FRAUD_MONITOR_FLUSH_SECONDS: '60'
  FRAUD_ARCHIVE_LINGER_MS: '1000'
  FRAUD_ARCHIVE_CONTAINER: decisionArchive.outputs.containerName
  FRAUD_ARCHIVE_STAGING_CONTAINER: stagingContainerName
  FRAUD_ARCHIVE_SCHEDULE: '0 10 * * * *'
  FRAUD_ARCHIVE_GRACE_MINUTES: '10'
  FRAUD_TRAINING_SAMPLE_CONTAINER: trainingSampleContainerName
  FRAUD_TRAINING_SAMPLE_RATE: '0.0001'
  FRAUD_AUDIT_RETENTION_DAYS: '180'
  FRAUD_DEAD_LETTER_RETENTION_DAYS: string(deadLetterRetentionDays)
  FRAUD_LABEL_RETENTION_DAYS: '400'
  FRAUD_PROFILE_INACTIVE_DAYS: '90'
  FRAUD_RETENTION_SCHEDULE: '0 40 * * * *'
  FRAUD_ANALYST_AUTH: 'entra'
  FRAUD_RELEASE_KEY: keyVault.outputs.releaseKeyUri
  FRAUD_AUTO_PROMOTE: 'false'
  FRAUD_TRAINING_MAX_AGE_DAYS: '730'
  FRAUD_PSEUDONYM_KEY: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.pseudonymKeySecretUri})'
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  // the identity must hold its storage roles before the app fetches its package
  dependsOn: [
    roles
    profileRoles
  ]
  params: {
    location: location
    planName: 'asp-${prefix}-${token}'
    name: functionAppName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    releaseIdentityId: identity.outputs.releaseId
    entraClientId: entraClientId
    entraTenantId: entraTenantId
    virtualNetworkSubnetId: privateNetworking ? network.outputs.appSubnetId : ''
    storageBlobEndpoint: hostStorage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    pythonVersion: pythonVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    alwaysReady: alwaysReady
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    zoneRedundant: zoneRedundant
    appSettings: union(appSettings, appSettingOverrides)
    profileConnections: profileConnections
    tags: tags
  }
}

module eventGrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  params: {
    location: location
    name: 'evgt-${prefix}-${token}'
    storageAccountId: dataStorage.outputs.id
    tags: tags
  }
}

output resourceGroupName string = resourceGroup().name
output functionAppName string = functionApp.outputs.name
output functionAppHostName string = functionApp.outputs.defaultHostName
output storageAccountName string = hostStorage.outputs.name
output dataStorageAccountName string = dataStorage.outputs.name
output profileStorageAccountNames array = [for i in range(0, profileAccountCount): profileStorage[i].outputs.name]
output eventHubsNamespace string = eventHubs.outputs.namespaceName
output eventHubsFullyQualifiedNamespace string = eventHubs.outputs.fullyQualifiedNamespace
output eventHubName string = eventHubs.outputs.eventHubName
output eventHubConsumerGroup string = eventHubs.outputs.consumerGroupName
output eventGridSystemTopicName string = eventGrid.outputs.name
output appInsightsName string = monitoring.outputs.appInsightsName
output identityClientId string = identity.outputs.clientId
output identityPrincipalId string = identity.outputs.principalId
output releaseIdentityClientId string = identity.outputs.releaseClientId
output releaseIdentityPrincipalId string = identity.outputs.releasePrincipalId
output keyVaultName string = keyVault.outputs.name
output releaseKeyUri string = keyVault.outputs.releaseKeyUri
output privateNetworking bool = privateNetworking
