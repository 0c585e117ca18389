// The Function App on the Flex Consumption plan (FC1), Python, running as the user-assigned
// identity. Flex Consumption rejects the classic deployment/runtime app settings
// (FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE,
// WEBSITE_CONTENT*, SCM_DO_BUILD_DURING_DEPLOYMENT, ...) and siteConfig.linuxFxVersion:
// the runtime, the deployment package and the scale settings live in functionAppConfig.
//
// It runs as two user-assigned identities (identity.bicep): the app identity (every connection
// but one, the Key Vault references, the deployment package) and the release identity (only the
// FRAUD_MODEL_STORAGE connection, whose __clientId names it: the retraining function's writes
// into the model registry).
//
// People sign in; machines use keys. App Service Authentication (authsettingsV2) puts every
// route behind Microsoft Entra ID sign-in, the dashboard and the analyst routes (/api/dashboard*,
// /api/alerts, /api/stats, /api/labels) included: the platform passes the signed-in principal in
// X-MS-CLIENT-PRINCIPAL and the app checks its roles (Fraud.Analyst, Fraud.Admin). The machine
// routes are excluded from sign-in and keep their function keys: /api/score, /api/predict,
// /api/health, /api/model, /api/openapi.json, and the host's Event Grid webhook
// /runtime/webhooks/blobs (Event Grid presents the blobs_extension system key, no Entra token).

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

@description('Resource id of the release identity (retraining), attached to the app too.')
param releaseIdentityId string

@description('Client id of the Entra app registration analysts sign in to (docs/DEPLOY.md).')
param entraClientId string

@description('Tenant id of that app registration.')
param entraTenantId string

@description('Resource id of the subnet (delegated to Microsoft.App/environments) for VNet integration; empty: none (dev).')
param virtualNetworkSubnetId string = ''

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

// Paths that skip sign-in (machines with function or system keys); everything else needs it.
var authExcludedPaths = [
  '/api/score'
  '/api/predict'
  '/api/health'
  '/api/model'
  '/api/openapi.json'
  '/runtime/webhooks/blobs'
]

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
      '${releaseIdentityId}': {}
    }
  }
  //checkov:skip=CKV_AZURE_222: The site's inbound endpoint stays public in every shape: Event Grid delivers blob events to the blob extension webhook over the public endpoint, the bank's systems call the scoring API, analysts sign in with Entra ID (authsettingsV2). Machine routes need a function key, every other route an Entra sign-in; the app's outbound traffic is private in production (VNet integration, private endpoints). Put API Management or Front Door in front to restrict inbound further (docs/DEPLOY.md).
  //checkov:skip=CKV_AZURE_17: Incoming client certificates would break Event Grid webhook delivery (it presents none) and the app does not validate them; callers authenticate with function keys over TLS 1.2. Put mTLS in front (API Management/Front Door) if the bank requires it.
  //checkov:skip=CKV_AZURE_212: No fixed instance count on Flex Consumption: it scales per function from zero; minimum warm capacity is the alwaysReady parameter (set in main.prod.parameters.json), zone spreading is zoneRedundant.
  //checkov:skip=CKV_AZURE_213: App Service health check does not apply to Flex Consumption (instances are platform-managed and scale to zero); /api/health is for external probes with a function key.
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references (FRAUD_PSEUDONYM_KEY, FRAUD_ALERT_WEBHOOK_URL) resolve as the app identity
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
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

// Entra ID sign-in (App Service Authentication). No client secret: sign-in uses the OpenID
// Connect id_token (ID tokens enabled on the registration), which carries the app roles; no
// token store (the session cookie carries the principal).
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  //checkov:skip=CKV_AZURE_13: Sign-in IS on: authsettingsV2 has platform.enabled true and requireAuthentication true (tests/integration/test_infra_security.py asserts it); the check reads the V1 `authsettings` shape (properties.enabled).
  //checkov:skip=CKV_AZURE_63: checkov reads every Microsoft.Web/sites/config as the `web` config (siteConfig); this is the authsettingsV2 config, which has no such property. HTTP logs go to Application Insights (host.json).
  //checkov:skip=CKV_AZURE_65: checkov reads every Microsoft.Web/sites/config as the `web` config (siteConfig); this is the authsettingsV2 config, which has no such property.
  name: 'authsettingsV2'
  //checkov:skip=CKV_AZURE_66: checkov reads every Microsoft.Web/sites/config as the `web` config (siteConfig); this is the authsettingsV2 config, which has no such property.
  //checkov:skip=CKV_AZURE_80: checkov reads every Microsoft.Web/sites/config as the `web` config (siteConfig); this is the authsettingsV2 config, which has no such property. The app is Python.
  //checkov:skip=CKV_AZURE_88: checkov reads every Microsoft.Web/sites/config as the `web` config (siteConfig); this is the authsettingsV2 config, which has no such property. Flex Consumption mounts no Azure Files.
  //checkov:skip=CKV_AZURE_222: checkov reads every Microsoft.Web/sites/config as the `web` config (siteConfig); this is the authsettingsV2 config, which has no such property. The skip on the site explains its public inbound endpoint.
  properties: {
    platform: {
      enabled: true
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: authExcludedPaths
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: entraClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${entraTenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            entraClientId
            'api://${entraClientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
      preserveUrlFragmentsForLogins: false
      cookieExpiration: {
        convention: 'FixedTime'
        timeToExpiration: '08:00:00'
      }
      nonce: {
        validateNonce: true
      }
    }
    httpSettings: {
      requireHttps: true
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
  }
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
output planName string = plan.name
