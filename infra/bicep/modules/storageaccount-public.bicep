// A storage account, dev network shape (storage.bicep, privateNetworking false): the public
// endpoint stays open, because no VNet reaches a developer's laptop and the dev Function App
// has no VNet integration. Access still needs an Entra identity with a data role: shared keys,
// local users and anonymous blobs are off. Otherwise identical to storageaccount.bicep (a test
// checks it); checkov's network checks are suppressed on this shape only.

@description('Azure region.')
param location string

@description('Storage account name (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Replication (storage.bicep skuName).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_ZRS'

@description('Tags for every resource.')
param tags object = {}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  //checkov:skip=CKV_AZURE_206: Replication is the skuName parameter: GZRS in main.prod.parameters.json, LRS only in dev.
  //checkov:skip=CKV_AZURE_35: Dev shape only (privateNetworking false): no VNet reaches a developer's laptop, so the default action stays Allow; access is Entra-only (allowSharedKeyAccess false, no anonymous blobs). Production (main.prod.parameters.json) deploys storageaccount.bicep: default action Deny, private endpoints.
  //checkov:skip=CKV_AZURE_59: Dev shape only (see CKV_AZURE_35); production (storageaccount.bicep) disables public network access.
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    isLocalUserEnabled: false
    isSftpEnabled: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

output id string = account.id
