// Role assignments: exactly the data-plane roles the app's user-assigned identity needs,
// plus (optionally) the send role for the bank's transaction producer.
//
// Built-in role definition ids (the same in every tenant):
//   Storage Blob Data Owner          b7e6dc6d-f1e8-4753-8033-0f276bb0955b
//   Storage Queue Data Contributor   974c5e8b-45b9-4653-ba55-5f855dd0fb88
//   Storage Table Data Contributor   0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3
//   Azure Event Hubs Data Receiver   a638d3c7-ab3a-418d-83e6-5f17a39d4fde
//   Azure Event Hubs Data Sender     2b629674-e913-4c01-ae53-ef4638d8f975
//   Monitoring Metrics Publisher     3913510d-42f4-4e42-8a64-420c390055eb
//
// Why each: Blob Data Owner - the Functions host (AzureWebJobsStorage: leases, Event Hubs
// checkpoints, blob trigger receipts), the Flex deployment package and the app's
// containers; Queue Data Contributor - host queues and the fraud-alerts queue; Table Data
// Contributor - profiles, scores, labels, merchantrisk; Event Hubs Data Receiver - the
// scoring trigger (on the hub only); Monitoring Metrics Publisher - Entra-authenticated
// Application Insights ingestion.

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

param storageAccountName string
param eventHubsNamespaceName string
param eventHubName string
param appInsightsName string

var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var eventHubsDataReceiver = 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
var eventHubsDataSender = '2b629674-e913-4c01-ae53-ef4638d8f975'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
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

resource appBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: host storage, deployment package, model registry and data containers.'
  }
}

resource appQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: host queues and the fraud-alerts queue.'
  }
}

resource appTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: profile, audit, label and merchant-risk tables.'
  }
}

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
