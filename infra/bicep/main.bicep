// Fraud scoring: the Azure resources of the Function App (Python v2 programming model) on
// the Flex Consumption plan. Deploy into an existing resource group (docs/DEPLOY.md):
//
//   az deployment group create -g <rg> -f infra/bicep/main.bicep -p @infra/bicep/main.dev.parameters.json
//
// No secret, key or connection string with a key appears here: every connection is
// identity-based (the user-assigned identity of identity.bicep) and tests/test_infra_bicep.py
// checks that, and that every app setting the code reads (shared/config.py) is set.

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

@description('Storage replication (Standard_ZRS/GZRS for production).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_ZRS'

@description('Days deleted blobs/containers stay recoverable.')
@minValue(1)
@maxValue(365)
param blobSoftDeleteDays int = 14

@description('Days previous blob versions (e.g. of the model registry pointer) are kept.')
@minValue(1)
param blobVersionRetentionDays int = 30

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
var storageAccountName = take(toLower('st${replace(baseName, '-', '')}${environmentName}${token}'), 24)
var functionAppName = 'func-${prefix}-${token}'
var deploymentContainerName = 'app-package'
var eventHubName = 'transactions'
var consumerGroupName = 'fraud-scoring'

// Storage the app uses (shared/config.py defaults) and the retraining blob triggers.
var blobContainers = [
  deploymentContainerName
  'models'
  'dead-letter'
  'labels'
  'monitoring'
  'training-data'
  'retrain-requests'
]
var tables = [
  'profiles'
  'scores'
  'merchantrisk'
  'labels'
]
var queues = [
  'fraud-alerts'
]

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    location: location
    name: 'id-${prefix}-${token}'
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

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    name: storageAccountName
    skuName: storageSku
    containers: blobContainers
    tables: tables
    queues: queues
    softDeleteDays: blobSoftDeleteDays
    versionRetentionDays: blobVersionRetentionDays
    tags: tags
  }
}

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
    tags: tags
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    appPrincipalId: identity.outputs.principalId
    producerPrincipalId: producerPrincipalId
    producerPrincipalType: producerPrincipalType
    storageAccountName: storage.outputs.name
    eventHubsNamespaceName: eventHubs.outputs.namespaceName
    eventHubName: eventHubs.outputs.eventHubName
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

// Every setting of shared/config.py SETTINGS. Connection settings in identity form
// (<NAME>__<property>); plain settings with the registry's defaults (override them with
// appSettingOverrides). tests/test_infra_bicep.py keeps this in step with the registry.
var appSettings = {
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  EventHubConnection__fullyQualifiedNamespace: eventHubs.outputs.fullyQualifiedNamespace
  EventHubConnection__credential: 'managedidentity'
  EventHubConnection__clientId: identity.outputs.clientId
  EVENTHUB_NAME: eventHubs.outputs.eventHubName
  EVENTHUB_CONSUMER_GROUP: eventHubs.outputs.consumerGroupName
  FRAUD_DEFAULT_CURRENCY: 'NGN'
  FRAUD_MAX_AMOUNT: '1000000000'
  FRAUD_MODEL_CONTAINER: 'models'
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
  FRAUD_ALERT_QUEUE: 'fraud-alerts'
  FRAUD_ALERT_WEBHOOK_URL: alertWebhookUrl
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
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  // the identity must hold its storage roles before the app fetches its package
  dependsOn: [
    roles
  ]
  params: {
    location: location
    planName: 'asp-${prefix}-${token}'
    name: functionAppName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    pythonVersion: pythonVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    alwaysReady: alwaysReady
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    zoneRedundant: zoneRedundant
    appSettings: union(appSettings, appSettingOverrides)
    tags: tags
  }
}

module eventGrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  params: {
    location: location
    name: 'evgt-${prefix}-${token}'
    storageAccountId: storage.outputs.id
    tags: tags
  }
}

output resourceGroupName string = resourceGroup().name
output functionAppName string = functionApp.outputs.name
output functionAppHostName string = functionApp.outputs.defaultHostName
output storageAccountName string = storage.outputs.name
output eventHubsNamespace string = eventHubs.outputs.namespaceName
output eventHubsFullyQualifiedNamespace string = eventHubs.outputs.fullyQualifiedNamespace
output eventHubName string = eventHubs.outputs.eventHubName
output eventHubConsumerGroup string = eventHubs.outputs.consumerGroupName
output eventGridSystemTopicName string = eventGrid.outputs.name
output appInsightsName string = monitoring.outputs.appInsightsName
output identityClientId string = identity.outputs.clientId
output identityPrincipalId string = identity.outputs.principalId
