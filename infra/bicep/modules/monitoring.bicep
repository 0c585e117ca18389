// Log Analytics workspace + workspace-based Application Insights. Local (instrumentation
// key) ingestion is disabled: the app sends telemetry with Entra ID as its user-assigned
// identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING), which needs the Monitoring
// Metrics Publisher role on the component (roles.bicep).

@description('Azure region.')
param location string

@description('Name of the Log Analytics workspace.')
param workspaceName string

@description('Name of the Application Insights component.')
param appInsightsName string

@description('Days the workspace keeps logs (30 to 730).')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

@description('Tags for every resource.')
param tags object = {}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
  }
}

output appInsightsName string = appInsights.name
output appInsightsId string = appInsights.id
// The connection string is not a secret (it names the ingestion endpoint; with local
// auth disabled it cannot be used to send telemetry without an Entra token).
output appInsightsConnectionString string = appInsights.properties.ConnectionString
output workspaceId string = workspace.id
