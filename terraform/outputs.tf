output "manager_ips" {
  description = "Public addresses of the Swarm managers (HAProxy runs here)"
  value       = hcloud_server.manager[*].ipv4_address
}

output "nfs_private_ip" {
  description = "NFS server address used by the stack's NFS volumes"
  value       = "10.0.1.20"
}

# Ansible inventory (YAML):  terraform output -raw ansible_inventory > ../ansible/inventory/hosts.yml
output "ansible_inventory" {
  description = "Ansible inventory for ansible/site.yml"
  value = templatefile("${path.module}/templates/inventory.yml.tftpl", {
    environment = var.environment
    managers    = [for s in hcloud_server.manager : { name = s.name, public = s.ipv4_address, private = one(s.network[*].ip) }]
    workers     = [for s in hcloud_server.worker : { name = s.name, public = s.ipv4_address, private = one(s.network[*].ip) }]
    dbs         = [for s in hcloud_server.db : { name = s.name, public = s.ipv4_address, private = one(s.network[*].ip) }]
    nfs         = { name = hcloud_server.nfs.name, public = hcloud_server.nfs.ipv4_address, private = "10.0.1.20" }
    storage     = [for i, s in hcloud_server.storage : {
      name    = s.name
      public  = s.ipv4_address
      private = one(s.network[*].ip)
      volume  = hcloud_volume.garage[i].linux_device
    }]
    garage_capacity = "${local.size.garage_gb}G"
  })
}
