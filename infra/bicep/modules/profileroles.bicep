// The app identity's one role on one profile account (FRAUD_PROFILE_STORAGE_<i>): Storage
// Table Data Contributor (0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3), scoped to that account's
// `profiles` table, the only thing the account holds. main.bicep deploys this once per
// profile account.

@description('Principal (object) id of the app\'s user-assigned identity.')
param appPrincipalId string

@description('Name of the profile storage account.')
param storageAccountName string

@description('The profiles table (FRAUD_PROFILE_TABLE).')
param tableName string

var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource profileStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: profileStorage
  name: 'default'
}

resource profileTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: tableService
  name: tableName
}

resource profileTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(profileTable.id, appPrincipalId, storageTableDataContributor)
  scope: profileTable
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Fraud scoring app: the customer profiles sharded onto this account.'
  }
}
