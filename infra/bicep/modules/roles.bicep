// Role assignments, least privilege: each identity holds the data-plane roles it needs, each
// scoped to the one container, table, queue, hub or component it is for. No identity holds
// Owner or Contributor on the data account (nor any account-wide role there). The profile
// accounts' table role is in profileroles.bicep, the Key Vault roles in keyvault.bicep.
//
// Built-in role definition ids (the same in every tenant):
//   Storage Blob Data Owner          b7e6dc6d-f1e8-4753-8033-0f276bb0955b
//   Storage Blob Data Contributor    ba92f5b4-2d11-453d-a403-e96b0029c9fe
//   Storage Blob Data Reader         2a2b9908-6ea1-4ae2-8e65-a410df84e7d1
//   Storage Queue Data Contributor   974c5e8b-45b9-4653-ba55-5f855dd0fb88
//   Storage Table Data Contributor   0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3
//   Azure Event Hubs Data Receiver   a638d3c7-ab3a-418d-83e6-5f17a39d4fde
//   Azure Event Hubs Data Sender     2b629674-e913-4c01-ae53-ef4638d8f975
//   Monitoring Metrics Publisher     3913510d-42f4-4e42-8a64-420c390055eb
//
// The HOST account (AzureWebJobsStorage) holds only the Functions host's own state, and the
// app identity keeps there what the host documents it needs (learn.microsoft.com, "Connecting
// to host storage with an identity"), account-wide because the host names its containers and
// queues itself: Blob Data Owner (leases, Event Hubs checkpoints, key store, the Flex
// deployment package), Queue Data Contributor (the blob trigger's internal queues), Table
// Data Contributor (diagnostic events). Never on the data account.
//
// The DATA account (FRAUD_DATA_STORAGE), per container/table/queue:
//   app identity  Blob Data Contributor on the containers it writes (appWriteContainers:
//                 dead letters, label files, monitoring reports, retrain requests, the
//                 training sample, the decision staging and the decision archive, whose
//                 immutability policy binds it like anyone: write once);
//                 Blob Data READER on the model registry and the training data (it loads
//                 models, and the retrain reads base data, but it never writes either);
//                 Table Data Contributor on each table; Queue Data Contributor on the alert
//                 queue (it creates, sends, peeks and counts) and the blob triggers' poison
//                 queue (webjobs-blobtrigger-poison, on the trigger connection's account).
//   release identity  Blob Data Contributor on the model registry only (publish candidates).
//   release approvers (optional, the Fraud.Admin group)  Blob Data Contributor on the model
//                 registry (tools.models approve moves the pointer).
// Event Hubs Data Receiver on the transactions hub; Monitoring Metrics Publisher on
// Application Insights; the producer's optional Data Sender on the hub.

@description('Principal (object) id of the app (scoring) identity.')
param appPrincipalId string

@description('Principal (object) id of the release identity (retraining).')
param releasePrincipalId string

@description('Optional: object id of the release approvers (the Fraud.Admin group): write access to the model registry, to move the pointer on approval.')
param releaseApproverPrincipalId string = ''

@description('Principal type of releaseApproverPrincipalId.')
@allowed([
  'Group'
  'User'
  'ServicePrincipal'
])
param releaseApproverPrincipalType string = 'Group'

@description('Optional: principal (object) id of the bank\'s transaction producer (a service principal or managed identity), granted Azure Event Hubs Data Sender on the hub. Empty: grant it later (docs/DEPLOY.md).')
param producerPrincipalId string = ''

@description('Principal type of the producer.')
@allowed([
  'ServicePrincipal'
  'User'
  'Group'
])
param producerPrincipalType string = 'ServicePrincipal'

@description('The host account (AzureWebJobsStorage).')
param hostStorageAccountName string

@description('The app\'s data account (FRAUD_DATA_STORAGE).')
param dataStorageAccountName string

@description('The model registry container (FRAUD_MODEL_CONTAINER): the app reads it, the release identity writes it.')
param modelContainerName string

@description('Data containers the app identity writes (Storage Blob Data Contributor on each).')
param appWriteContainers array

@description('Data containers the app identity only reads, besides the model registry (Storage Blob Data Reader on each).')
param appReadContainers array

@description('Data tables of the app identity (Storage Table Data Contributor on each).')
param appTables array

@description('Data queues of the app identity (Storage Queue Data Contributor on each).')
param appQueues array

param eventHubsNamespaceName string
param eventHubName string
param appInsightsName string

var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var eventHubsDataReceiver = 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
var eventHubsDataSender = '2b629674-e913-4c01-ae53-ef4638d8f975'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataStorageAccountName
}

resource dataBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: dataStorage
  name: 'default'
}

resource dataTableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: dataStorage
  name: 'default'
}

resource dataQueueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: dataStorage
  name: 'default'
}

resource modelContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: dataBlobService
  name: modelContainerName
}

resource writeContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [for container in appWriteContainers: {
  parent: dataBlobService
  name: container
}]

resource readContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [for container in appReadContainers: {
  parent: dataBlobService
  name: container
}]

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = [for table in appTables: {
  parent: dataTableService
  name: table
}]

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = [for queue in appQueues: {
  parent: dataQueueService
  name: queue
}]

resource eventHubsNamespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: eventHubsNamespaceName
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' existing = {
  parent: eventHubsNamespace
  name: eventHubName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// --- host account: the Functions host's own state ------------------------------------------------

resource hostBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appPrincipalId, storageBlobDataOwner)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app, Functions host: leases, checkpoints, key store, deployment package.'
  }
}

resource hostQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appPrincipalId, storageQueueDataContributor)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app, Functions host: the blob trigger\'s internal queues.'
  }
}

resource hostTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appPrincipalId, storageTableDataContributor)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app, Functions host: diagnostic events.'
  }
}

// --- data account: per container, table and queue ------------------------------------------------

resource appContainerWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (container, i) in appWriteContainers: {
  name: guid(writeContainers[i].id, appPrincipalId, storageBlobDataContributor)
  scope: writeContainers[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: writes container ${container}.'
  }
}]

resource appContainerReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (container, i) in appReadContainers: {
  name: guid(readContainers[i].id, appPrincipalId, storageBlobDataReader)
  scope: readContainers[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: reads container ${container}.'
  }
}]

resource appModelReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(modelContainer.id, appPrincipalId, storageBlobDataReader)
  scope: modelContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: loads signed models from the registry; cannot write it.'
  }
}

resource releaseModelWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(modelContainer.id, releasePrincipalId, storageBlobDataContributor)
  scope: modelContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: releasePrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud release identity (retraining): publishes signed candidates into the registry.'
  }
}

resource approverModelWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(releaseApproverPrincipalId)) {
  name: guid(modelContainer.id, releaseApproverPrincipalId, storageBlobDataContributor)
  scope: modelContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: releaseApproverPrincipalId
    principalType: releaseApproverPrincipalType
    description: 'Fraud release approvers (Fraud.Admin): tools.models approve moves the registry pointer.'
  }
}

resource appTableWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (table, i) in appTables: {
  name: guid(tables[i].id, appPrincipalId, storageTableDataContributor)
  scope: tables[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: table ${table}.'
  }
}]

resource appQueueWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (queue, i) in appQueues: {
  name: guid(queues[i].id, appPrincipalId, storageQueueDataContributor)
  scope: queues[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: queue ${queue}.'
  }
}]

// --- Event Hubs and Application Insights ----------------------------------------------------

resource appEventHubsDataReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hub.id, appPrincipalId, eventHubsDataReceiver)
  scope: hub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventHubsDataReceiver)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: the Event Hub trigger reads the transactions hub.'
  }
}

resource appMonitoringMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: Entra-authenticated Application Insights telemetry.'
  }
}

resource producerEventHubsDataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(producerPrincipalId)) {
  name: guid(hub.id, producerPrincipalId, eventHubsDataSender)
  scope: hub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventHubsDataSender)
    principalId: producerPrincipalId
    principalType: producerPrincipalType
    description: 'Bank transaction producer: sends to the transactions hub.'
  }
}
