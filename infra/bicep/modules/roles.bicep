// Role assignments: exactly the data-plane roles the app's user-assigned identity needs,
// plus (optionally) the send role for the bank's transaction producer. The profile accounts'
// table role is in profileroles.bicep (one module per account, a loop in main.bicep).
//
// Built-in role definition ids (the same in every tenant):
//   Storage Blob Data Owner          b7e6dc6d-f1e8-4753-8033-0f276bb0955b
//   Storage Blob Data Contributor    ba92f5b4-2d11-453d-a403-e96b0029c9fe
//   Storage Queue Data Contributor   974c5e8b-45b9-4653-ba55-5f855dd0fb88
//   Storage Table Data Contributor   0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3
//   Azure Event Hubs Data Receiver   a638d3c7-ab3a-418d-83e6-5f17a39d4fde
//   Azure Event Hubs Data Sender     2b629674-e913-4c01-ae53-ef4638d8f975
//   Monitoring Metrics Publisher     3913510d-42f4-4e42-8a64-420c390055eb
//
// Why each, on the host account (AzureWebJobsStorage), what the Functions host needs
// (learn.microsoft.com, "Connecting to host storage with an identity"): Blob Data Owner -
// leases, Event Hubs checkpoints, the key store, the Flex deployment package; Queue Data
// Contributor - the blob trigger's internal queues, which live on AzureWebJobsStorage
// whatever the trigger's connection; Table Data Contributor - the host's diagnostic events.
// On the data account (FRAUD_DATA_STORAGE), what the app does with its data: Blob Data
// Contributor - read and write the app's containers (no ACL or ownership changes, and the
// decision archive's immutability policy binds it like anyone); Queue Data Contributor -
// the fraud-alerts queue and the retrain blob triggers' poison queue; Table Data Contributor
// - profiles, scores, labels, merchantrisk, monitoraggregates. Event Hubs Data Receiver - the
// scoring trigger (on the hub only); Monitoring Metrics Publisher - Entra-authenticated
// Application Insights ingestion. Every storage role is scoped to one account, no wider.

@description('Principal (object) id of the app\'s user-assigned identity.')
param appPrincipalId string

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

param eventHubsNamespaceName string
param eventHubName string
param appInsightsName string

var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
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

// --- host account -------------------------------------------------------------------------

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

// --- data account -------------------------------------------------------------------------

resource dataBlobDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, appPrincipalId, storageBlobDataContributor)
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: model registry, dead letters, labels, monitoring, training data, decision archive.'
  }
}

resource dataQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, appPrincipalId, storageQueueDataContributor)
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: the fraud-alerts queue.'
  }
}

resource dataTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, appPrincipalId, storageTableDataContributor)
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: profile, audit, label, merchant-risk and monitoring-aggregate tables.'
  }
}

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
