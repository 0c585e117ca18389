// The app's user-assigned managed identity. Every data-plane call the app makes (storage,
// Event Hubs, Application Insights) and the Flex deployment-package download use it; the
// roles it holds are granted in roles.bicep.

@description('Azure region.')
param location string

@description('Name of the user-assigned identity.')
param name string

@description('Tags for every resource.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
