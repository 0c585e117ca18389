// The Key Vault, production network shape (keyvault.bicep, privateNetworking): public network
// access disabled, network ACLs deny, no trusted-service bypass; reached only through the
// private endpoint keyvault.bicep adds. Otherwise identical to vault-public.bicep (a test checks
// it): Premium (HSM keys), RBAC authorization, soft delete and purge protection. A module of its
// own so checkov checks this shape in full, with no network suppression.

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
    publicNetworkAccess: 'Disabled'
    networkAcls: {
      bypass: 'None'
      defaultAction: 'Deny'
    }
  }
}

output id string = vault.id
