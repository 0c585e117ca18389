// The Function App on the Flex Consumption plan (FC1), Python, running as the user-assigned
// identity. Flex Consumption rejects the classic deployment/runtime app settings
// (FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE,
// WEBSITE_CONTENT*, SCM_DO_BUILD_DURING_DEPLOYMENT, ...) and siteConfig.linuxFxVersion:
// the runtime, the deployment package and the scale settings live in functionAppConfig.

@description('Azure region.')
param location string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Name of the function app (globally unique host name).')
param name string

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of that identity (Application Insights Entra authentication).')
param identityClientId string

@description('Blob endpoint of the storage account holding the deployment package, e.g. https://<account>.blob.core.windows.net/.')
param storageBlobEndpoint string

@description('Container of the deployment package (created by storage.bicep).')
param deploymentContainerName string

@description('Application Insights connection string (not a secret: an endpoint; local auth is disabled).')
param appInsightsConnectionString string

@description('Python version (Flex Consumption supports 3.11 and 3.12; the app is tested on 3.11).')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('Memory of each instance in MB (CPU scales with it). 2048 is recommended: onnxruntime + model.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Ceiling on the instances the app scales out to (1-1000).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Always-ready instances, e.g. [{"name": "function:score_stream", "instanceCount": 1}, {"name": "http", "instanceCount": 1}]. Empty: scale to zero.')
param alwaysReady array = []

@description('Concurrent HTTP requests per instance; 0 keeps the platform default for the instance size.')
@minValue(0)
@maxValue(1000)
param httpPerInstanceConcurrency int = 0

@description('Spread instances across availability zones (only in regions that support it for Flex Consumption: az functionapp list-flexconsumption-locations --zone-redundant). The platform then keeps at least 2 always-ready instances per function group, billed as always-ready.')
param zoneRedundant bool = false

@description('The app\'s settings (shared/config.py SETTINGS, connection settings in identity form), name -> value. Secure: it carries the alert webhook URL, which must not land in the deployment history.')
@secure()
param appSettings object

@description('The profile accounts\' connections, [{setting: \'FRAUD_PROFILE_STORAGE_1\', tableServiceUri: \'https://<account>.table.core.windows.net/\'}, ...]: each becomes <setting>__tableServiceUri, __credential and __clientId (the names are listed in the FRAUD_PROFILE_ACCOUNTS app setting).')
param profileConnections array = []

@description('Tags for every resource.')
param tags object = {}

// Platform settings: telemetry with Entra ID as the user-assigned identity.
// The host refuses a bigger request body before buffering it (the app's own check runs after).
var platformSettings = {
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'
  FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: appSettings.FRAUD_HTTP_MAX_BODY_BYTES
}

var allSettings = union(appSettings, platformSettings)

// Name/value pairs: the settings object, then the identity-based connection of each profile
// account (their names depend on profileConnections, so they cannot be object keys here).
var namedSettings = [for setting in items(allSettings): {
  name: setting.key
  value: setting.value
}]
var profileUriSettings = [for connection in profileConnections: {
  name: '${connection.setting}__tableServiceUri'
  value: connection.tableServiceUri
}]
var profileCredentialSettings = [for connection in profileConnections: {
  name: '${connection.setting}__credential'
  value: 'managedidentity'
}]
var profileClientIdSettings = [for connection in profileConnections: {
  name: '${connection.setting}__clientId'
  value: identityClientId
}]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  //checkov:skip=CKV_AZURE_225: Zone redundancy is the zoneRedundant parameter (true in main.prod.parameters.json); it is not available in every Flex Consumption region and costs 2 always-ready instances per function group, so dev leaves it off.
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  //checkov:skip=CKV_AZURE_222: The HTTP scoring API is called by the bank's systems and Event Grid delivers blob events to the blob extension webhook, both over the public endpoint; every HTTP function needs a function key (auth level FUNCTION). Private endpoints/access restrictions are the documented next step (docs/DEPLOY.md).
  //checkov:skip=CKV_AZURE_17: Incoming client certificates would break Event Grid webhook delivery (it presents none) and the app does not validate them; callers authenticate with function keys over TLS 1.2. Put mTLS in front (API Management/Front Door) if the bank requires it.
  //checkov:skip=CKV_AZURE_212: No fixed instance count on Flex Consumption: it scales per function from zero; minimum warm capacity is the alwaysReady parameter (set in main.prod.parameters.json), zone spreading is zoneRedundant.
  //checkov:skip=CKV_AZURE_213: App Service health check does not apply to Flex Consumption (instances are platform-managed and scale to zero); /api/health is for external probes with a function key.
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: concat(namedSettings, profileUriSettings, profileCredentialSettings, profileClientIdSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: alwaysReady
        triggers: httpPerInstanceConcurrency > 0 ? {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        } : null
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
output planName string = plan.name
