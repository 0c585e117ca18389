// Event Hubs namespace, the transactions hub and the scoring function's consumer group.
// Local (SAS) authentication is disabled: the app receives, and the bank's producer sends,
// with Entra ID identities (Azure Event Hubs Data Receiver / Data Sender, roles.bicep).
// Production (privateNetworking): public network access disabled and a private endpoint in
// network.bicep's subnet, so the bank's producer sends from a network peered to that VNet (or
// its own private endpoint). Dev keeps the public endpoint (no VNet from a laptop); it still
// takes Entra identities only.

@description('Azure region.')
param location string

@description('Namespace name (6-50 characters, globally unique).')
@minLength(6)
@maxLength(50)
param namespaceName string

@description('Standard (throughput units) or Premium (processing units). Basic has no consumer groups besides $Default.')
@allowed([
  'Standard'
  'Premium'
])
param skuName string = 'Standard'

@description('Throughput units (Standard, 1-40) or processing units (Premium: 1, 2, 4, 8, 16).')
@minValue(1)
@maxValue(40)
param capacity int = 1

@description('Standard only: let Event Hubs raise throughput units up to maximumThroughputUnits under load.')
param autoInflate bool = false

@description('Standard only, with autoInflate: the ceiling of throughput units (0 = no auto-inflate).')
@minValue(0)
@maxValue(40)
param maximumThroughputUnits int = 0

@description('Event hub carrying the bank\'s transactions (EVENTHUB_NAME).')
param eventHubName string

@description('Partitions of the hub: the ceiling on parallel scoring instances. Standard allows 1-32, Premium up to 100. Cannot be lowered later (and raised only on Premium/Dedicated).')
@minValue(1)
@maxValue(100)
param partitionCount int = 4

@description('Days events are kept (Standard: 1-7, Premium: up to 90).')
@minValue(1)
@maxValue(90)
param messageRetentionInDays int = 1

@description('Consumer group of the scoring function (EVENTHUB_CONSUMER_GROUP).')
param consumerGroupName string

@description('Production shape: public network access disabled, a private endpoint instead.')
param privateNetworking bool = false

@description('privateNetworking: subnet of the private endpoint (network.bicep endpointSubnetId).')
param privateEndpointSubnetId string = ''

@description('privateNetworking: id of the privatelink.servicebus.windows.net zone.')
param privateDnsZoneId string = ''

@description('Tags for every resource.')
param tags object = {}

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuName
    capacity: capacity
  }
  properties: {
    minimumTlsVersion: '1.2'
    disableLocalAuth: true
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    isAutoInflateEnabled: skuName == 'Standard' && autoInflate
    maximumThroughputUnits: skuName == 'Standard' && autoInflate ? maximumThroughputUnits : 0
  }
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: eventHubName
  properties: {
    partitionCount: partitionCount
    messageRetentionInDays: messageRetentionInDays
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: hub
  name: consumerGroupName
  properties: {
    userMetadata: 'Fraud scoring function (Event Hub trigger).'
  }
}

resource privateEndpoint 'Microsoft.Network/privateEndpoints@2023-11-01' = if (privateNetworking) {
  name: 'pe-${namespaceName}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: namespaceName
        properties: {
          privateLinkServiceId: namespace.id
          groupIds: [
            'namespace'
          ]
        }
      }
    ]
  }
}

resource privateDnsZoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = if (privateNetworking) {
  parent: privateEndpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: 'namespace'
        properties: {
          privateDnsZoneId: privateDnsZoneId
        }
      }
    ]
  }
}

output namespaceName string = namespace.name
output namespaceId string = namespace.id
// host name only, e.g. evhns-fraud-prod-xyz.servicebus.windows.net (cloud-independent)
output fullyQualifiedNamespace string = replace(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':443/', '')
output eventHubName string = hub.name
output eventHubId string = hub.id
output consumerGroupName string = consumerGroup.name
