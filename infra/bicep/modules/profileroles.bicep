// The app identity's one role on one profile account (FRAUD_PROFILE_STORAGE_<i>): Storage
// Table Data Contributor (0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3), scoped to that account. The
// account holds only the `profiles` table, so nothing wider (no blob or queue role) is needed.
// main.bicep deploys this once per profile account.

@description('Principal (object) id of the app\'s user-assigned identity.')
param appPrincipalId string

@description('Name of the profile storage account.')
param storageAccountName string

var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource profileStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource profileTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(profileStorage.id, appPrincipalId, storageTableDataContributor)
  scope: profileStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: the customer profiles sharded onto this account.'
  }
}
