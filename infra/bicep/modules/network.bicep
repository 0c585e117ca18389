// Private networking of the production shape (main.bicep privateNetworking = true): one
// virtual network with two subnets and the private DNS zones the private endpoints register in.
//
//   - `app`: delegated to Microsoft.App/environments, the delegation Flex Consumption VNet
//     integration needs (the Function App's virtualNetworkSubnetId, functionapp.bicep). All of
//     the app's outbound traffic (storage, Event Hubs, Key Vault references) leaves through it.
//   - `private-endpoints`: the private endpoints of the host, data and profile storage
//     accounts (storage.bicep), the Event Hubs namespace (eventhubs.bicep) and the Key Vault
//     (keyvault.bicep), whose public network access is then disabled.
//
// Each private DNS zone is linked to the VNet, so inside it the services' public host names
// resolve to their private endpoints. Zone names are Azure public cloud's.

@description('Azure region.')
param location string

@description('Name of the virtual network.')
param name string

@description('Address space of the virtual network.')
param addressPrefix string = '10.40.0.0/16'

@description('Subnet of the Function App\'s VNet integration (Flex Consumption: /24 or larger is recommended so scale-out does not run out of addresses).')
param appSubnetPrefix string = '10.40.0.0/23'

@description('Subnet of the private endpoints.')
param endpointSubnetPrefix string = '10.40.2.0/24'

@description('Tags for every resource.')
param tags object = {}

// privatelink zones of blob, queue, table (storage), namespace (Event Hubs) and vault (Key Vault)
var privateDnsZoneNames = [
  'privatelink.blob.core.windows.net'
  'privatelink.queue.core.windows.net'
  'privatelink.table.core.windows.net'
  'privatelink.servicebus.windows.net'
  'privatelink.vaultcore.azure.net'
]

resource appNsg 'Microsoft.Network/networkSecurityGroups@2023-11-01' = {
  name: 'nsg-${name}-app'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource endpointNsg 'Microsoft.Network/networkSecurityGroups@2023-11-01' = {
  name: 'nsg-${name}-pe'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2023-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: {
            id: appNsg.id
          }
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: endpointSubnetPrefix
          networkSecurityGroup: {
            id: endpointNsg.id
          }
          privateEndpointNetworkPolicies: 'Enabled'
        }
      }
    ]
  }
}

resource privateDnsZones 'Microsoft.Network/privateDnsZones@2020-06-01' = [for zone in privateDnsZoneNames: {
  name: zone
  location: 'global'
  tags: tags
}]

resource privateDnsZoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [for (zone, i) in privateDnsZoneNames: {
  parent: privateDnsZones[i]
  name: 'link-${name}'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

output vnetId string = vnet.id
output appSubnetId string = '${vnet.id}/subnets/app'
output endpointSubnetId string = '${vnet.id}/subnets/private-endpoints'
// zone id per private endpoint group id (storage.bicep, eventhubs.bicep, keyvault.bicep)
output privateDnsZoneIds object = {
  blob: privateDnsZones[0].id
  queue: privateDnsZones[1].id
  table: privateDnsZones[2].id
  namespace: privateDnsZones[3].id
  vault: privateDnsZones[4].id
}
