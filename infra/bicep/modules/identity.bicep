// The app's two user-assigned managed identities, both attached to the Function App:
//
//   - the APP (scoring) identity: every data-plane call of scoring, the dashboard, the
//     timers and the Functions host (storage, Event Hubs, Application Insights, Key Vault
//     references) and the Flex deployment-package download. It may READ the model registry
//     and the release key's public half (to verify a release), never write either.
//   - the RELEASE identity: used only by the retraining function, through the
//     FRAUD_MODEL_STORAGE connection (its __clientId), to publish candidates into `models`
//     and to sign releases with the Key Vault key. Nothing else runs as it.
//
// The roles each holds are granted in roles.bicep, profileroles.bicep and keyvault.bicep.

@description('Azure region.')
param location string

@description('Name of the app (scoring) identity.')
param name string

@description('Name of the release identity (retraining: write `models`, sign releases).')
param releaseName string

@description('Tags for every resource.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

resource releaseIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: releaseName
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
output releaseId string = releaseIdentity.id
output releaseName string = releaseIdentity.name
output releaseClientId string = releaseIdentity.properties.clientId
output releasePrincipalId string = releaseIdentity.properties.principalId
