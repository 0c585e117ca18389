// The Key Vault of the app's keys and secrets (RBAC mode: access is by role assignment only,
// each scoped to the one key or secret it is for; no access policies):
//
//   - key `fraud-release`, EC P-256 in an HSM (EC-HSM, Premium vault), non-exportable: the
//     release key. The release identity (retraining) and the release approvers (the
//     Fraud.Admin group, `python -m tools.models approve`) hold Key Vault Crypto User on it:
//     they may sign. The scoring identity holds Key Vault Reader on it: it reads the public
//     key and verifies a release's signature itself; it can never sign. The app setting
//     FRAUD_RELEASE_KEY is the key's URI without a version (releaseKeyUri).
//   - secret `pseudonym-key`: the HMAC-SHA-256 key of the pseudonyms (FRAUD_PSEUDONYM_KEY, a Key
//     Vault reference). Its value never has a default here: pass it once, on the first
//     deployment, as the @secure() pseudonymKey parameter (docs/DEPLOY.md), or let
//     infra/post-deploy.sh create it. Later deployments leave it out and the secret stays:
//     a new value would re-key every pseudonym.
//   - secret `alert-webhook-url`: the alert webhook URL (it carries its own credential), only
//     when the @secure() alertWebhookUrl parameter is given; FRAUD_ALERT_WEBHOOK_URL is then a
//     Key Vault reference, empty otherwise. It is never passed to a non-secure parameter nor
//     output.
// The scoring identity holds Key Vault Secrets User on each of the two secrets, and resolves
// the references as the site's keyVaultReferenceIdentity (functionapp.bicep).
//
// Soft delete (90 days) and purge protection are on: a deleted key or secret can be recovered
// and nobody can purge it early. Network: as storage.bicep, two shapes, one deployed: the
// production one (vault.bicep; privateNetworking) with public network access disabled and a
// private endpoint; the dev one public (vault-public.bicep; checkov's network checks skipped on
// it only).

@description('Azure region.')
param location string

@description('Vault name (3-24 letters, digits, hyphens; globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Principal (object) id of the app (scoring) identity: Key Vault Reader on the release key, Key Vault Secrets User on the two secrets.')
param appPrincipalId string

@description('Principal (object) id of the release identity: Key Vault Crypto User on the release key (sign).')
param releasePrincipalId string

@description('Optional: object id of the release approvers (the Fraud.Admin group): Key Vault Crypto User on the release key, to sign an approval with their own sign-in. Empty: grant it later (docs/DEPLOY.md).')
param releaseApproverPrincipalId string = ''

@description('Principal type of releaseApproverPrincipalId.')
@allowed([
  'Group'
  'User'
  'ServicePrincipal'
])
param releaseApproverPrincipalType string = 'Group'

@description('The HMAC key of the pseudonyms (base64 of 32 random bytes): pass it on the first deployment only (-p pseudonymKey="$(openssl rand -base64 32)"); empty: the secret is left as it is.')
@secure()
param pseudonymKey string = ''

@description('The alert webhook URL (carries its own credential); empty: no webhook secret.')
@secure()
param alertWebhookUrl string = ''

@description('Days a deleted vault, key or secret stays recoverable (7-90).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Production shape: public network access disabled, a private endpoint instead.')
param privateNetworking bool = false

@description('privateNetworking: subnet of the private endpoint (network.bicep endpointSubnetId).')
param privateEndpointSubnetId string = ''

@description('privateNetworking: id of the privatelink.vaultcore.azure.net zone.')
param privateDnsZoneId string = ''

@description('Tags for every resource.')
param tags object = {}

var keyVaultReader = '21090545-7ca7-4776-b22c-e363652d74d2'
var keyVaultCryptoUser = '12338af0-0e69-4776-bea7-57ae8d297424'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

var releaseKeyName = 'fraud-release'
var pseudonymSecretName = 'pseudonym-key'
var webhookSecretName = 'alert-webhook-url'
var vaultUri = 'https://${name}${environment().suffixes.keyvaultDns}/'

// Exactly one shape of the vault, each a module of its own so checkov checks it.
module vault 'vault.bicep' = if (privateNetworking) {
  name: 'vault-${name}'
  params: {
    location: location
    name: name
    softDeleteRetentionInDays: softDeleteRetentionInDays
    tags: tags
  }
}

module publicVault 'vault-public.bicep' = if (!privateNetworking) {
  name: 'vault-public-${name}'
  params: {
    location: location
    name: name
    softDeleteRetentionInDays: softDeleteRetentionInDays
    tags: tags
  }
}

// ARM creates a key only if it does not exist: redeploying never makes a new version.
resource releaseKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' = {
  name: '${name}/${releaseKeyName}'
  dependsOn: [
    vault
    publicVault
  ]
  //checkov:skip=CKV_AZURE_40: No expiry on the release key: an expired key cannot verify, so every signed release would stop loading at once. It is rotated deliberately (a new version, then re-sign the current release; docs/DEPLOY.md).
  properties: {
    kty: 'EC-HSM'
    curveName: 'P-256'
    keyOps: [
      'sign'
      'verify'
    ]
    attributes: {
      enabled: true
      exportable: false
    }
  }
}

resource pseudonymKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(pseudonymKey)) {
  name: '${name}/${pseudonymSecretName}'
  dependsOn: [
    vault
    publicVault
  ]
  //checkov:skip=CKV_AZURE_114: contentType is set (below); checkov does not read the body of a conditional resource (`= if (...)`), tests/integration/test_infra_security.py checks it.
  //checkov:skip=CKV_AZURE_41: No expiry on the pseudonym key: a new key re-keys every pseudonym (profiles, webhook), so it is rotated deliberately with a re-keying, never by a date.
  properties: {
    value: pseudonymKey
    contentType: 'application/octet-stream; base64 HMAC-SHA-256 key of the pseudonyms'
    attributes: {
      enabled: true
    }
  }
}

resource webhookSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(alertWebhookUrl)) {
  name: '${name}/${webhookSecretName}'
  dependsOn: [
    vault
    publicVault
  ]
  //checkov:skip=CKV_AZURE_114: contentType is set (below); checkov does not read the body of a conditional resource (`= if (...)`), tests/integration/test_infra_security.py checks it.
  //checkov:skip=CKV_AZURE_41: The webhook URL expires when its issuer (e.g. the Teams connector) revokes it; it is replaced by redeploying with the new alertWebhookUrl.
  properties: {
    value: alertWebhookUrl
    contentType: 'text/uri-list; alert webhook URL'
    attributes: {
      enabled: true
    }
  }
}

// --- roles, each scoped to one key or secret ----------------------------------------------------

resource appReleaseKeyReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceId('Microsoft.KeyVault/vaults/keys', name, releaseKeyName), appPrincipalId, keyVaultReader)
  scope: releaseKey
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultReader)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: read the release key\'s public half to verify releases (no sign).'
  }
}

resource releaseKeyCryptoUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceId('Microsoft.KeyVault/vaults/keys', name, releaseKeyName), releasePrincipalId, keyVaultCryptoUser)
  scope: releaseKey
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCryptoUser)
    principalId: releasePrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud release identity (retraining): sign candidate releases with the release key.'
  }
}

resource approverReleaseKeyCryptoUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(releaseApproverPrincipalId)) {
  name: guid(resourceId('Microsoft.KeyVault/vaults/keys', name, releaseKeyName), releaseApproverPrincipalId, keyVaultCryptoUser)
  scope: releaseKey
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCryptoUser)
    principalId: releaseApproverPrincipalId
    principalType: releaseApproverPrincipalType
    description: 'Fraud release approvers (Fraud.Admin): sign approvals (python -m tools.models approve).'
  }
}

resource appPseudonymKeySecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(pseudonymKey)) {
  name: guid(resourceId('Microsoft.KeyVault/vaults/secrets', name, pseudonymSecretName), appPrincipalId, keyVaultSecretsUser)
  scope: pseudonymKeySecret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: the pseudonym key (Key Vault reference FRAUD_PSEUDONYM_KEY).'
  }
}

resource appWebhookSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(alertWebhookUrl)) {
  name: guid(resourceId('Microsoft.KeyVault/vaults/secrets', name, webhookSecretName), appPrincipalId, keyVaultSecretsUser)
  scope: webhookSecret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: the alert webhook URL (Key Vault reference FRAUD_ALERT_WEBHOOK_URL).'
  }
}

// --- private endpoint (production shape) ---------------------------------------------------------

resource privateEndpoint 'Microsoft.Network/privateEndpoints@2023-11-01' = if (privateNetworking) {
  name: 'pe-${name}'
  location: location
  tags: tags
  dependsOn: [
    vault
  ]
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: resourceId('Microsoft.KeyVault/vaults', name)
          groupIds: [
            'vault'
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
        name: 'vault'
        properties: {
          privateDnsZoneId: privateDnsZoneId
        }
      }
    ]
  }
}

output name string = name
output id string = resourceId('Microsoft.KeyVault/vaults', name)
output vaultUri string = vaultUri
// FRAUD_RELEASE_KEY: the key's URI without a version (the app reads the current version)
output releaseKeyUri string = '${vaultUri}keys/${releaseKeyName}'
// Key Vault references' targets (no version: the latest); not secrets, only where they are
output pseudonymKeySecretUri string = '${vaultUri}secrets/${pseudonymSecretName}'
output alertWebhookSecretUri string = '${vaultUri}secrets/${webhookSecretName}'
