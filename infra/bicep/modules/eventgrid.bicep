// Event Grid system topic on the storage account. The blob-triggered retraining functions
// use the Event Grid blob trigger source (the only one Flex Consumption supports): Event
// Grid pushes BlobCreated events to the app's blob extension webhook. The event
// subscription needs the deployed app's blobs_extension system key, and no template here
// reads keys, so it is created after deployment by infra/post-deploy.sh (see
// docs/DEPLOY.md).

@description('Azure region (the storage account\'s).')
param location string

@description('System topic name.')
param name string

@description('Resource id of the storage account whose blob events are published.')
param storageAccountId string

@description('Tags for every resource.')
param tags object = {}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    source: storageAccountId
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output name string = systemTopic.name
output id string = systemTopic.id
