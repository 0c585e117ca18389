// The Key Vault, dev network shape (keyvault.bicep, privateNetworking false): public endpoint,
// because a developer's laptop and the dev Function App (no VNet integration) reach it over the
// internet. Every call still needs an Entra identity with a role on the one key or secret.
// Otherwise identical to vault.bicep (a test checks it); checkov's network checks are
// suppressed on this shape only.

@description('Azure region.')
param location string

@description('Vault name (keyvault.bicep).')
@minLength(3)
@maxLength(24)
param name string

@description('Days a deleted vault, key or secret stays recoverable (7-90).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Tags for every resource.')
param tags object = {}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  //checkov:skip=CKV_AZURE_109: Dev shape only (privateNetworking false): a developer's laptop and the app without VNet integration reach the vault over its public endpoint; every call needs an Entra identity with a role on the one key or secret. Production (main.prod.parameters.json) deploys vault.bicep: default action Deny, a private endpoint.
  //checkov:skip=CKV_AZURE_189: Dev shape only (see CKV_AZURE_109); production (vault.bicep) disables public network access.
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'premium'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

output id string = vault.id
