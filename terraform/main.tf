locals {
  size   = var.sizes[var.environment]
  prefix = "hosting-${var.environment}"
  labels = { project = "hosting", environment = var.environment }
}

resource "hcloud_ssh_key" "admin" {
  name       = "${local.prefix}-admin"
  public_key = var.ssh_public_key
}

# Private network for Swarm traffic and NFS (seed volume table: NFS server 10.0.1.20).
resource "hcloud_network" "private" {
  name     = "${local.prefix}-net"
  ip_range = "10.0.0.0/16"
  labels   = local.labels
}

resource "hcloud_network_subnet" "nodes" {
  network_id   = hcloud_network.private.id
  type         = "cloud"
  network_zone = "eu-central"
  ip_range     = "10.0.1.0/24"
}

resource "hcloud_placement_group" "spread" {
  name   = "${local.prefix}-spread"
  type   = "spread"
  labels = local.labels
}

resource "hcloud_server" "manager" {
  count              = var.manager_count
  name               = "${local.prefix}-manager-${count.index + 1}"
  server_type        = local.size.manager
  image              = var.image
  location           = var.location
  ssh_keys           = [hcloud_ssh_key.admin.id]
  placement_group_id = hcloud_placement_group.spread.id
  firewall_ids       = [hcloud_firewall.swarm.id, hcloud_firewall.edge.id]
  labels             = merge(local.labels, { role = "manager" })
  network {
    network_id = hcloud_network.private.id
    ip         = "10.0.1.${10 + count.index}"
  }
  depends_on = [hcloud_network_subnet.nodes]
}

resource "hcloud_server" "worker" {
  count        = local.size.workers
  name         = "${local.prefix}-worker-${count.index + 1}"
  server_type  = local.size.app
  image        = var.image
  location     = var.location
  ssh_keys     = [hcloud_ssh_key.admin.id]
  firewall_ids = [hcloud_firewall.swarm.id]
  labels       = merge(local.labels, { role = "worker" })
  network {
    network_id = hcloud_network.private.id
    ip         = "10.0.1.${30 + count.index}"
  }
  depends_on = [hcloud_network_subnet.nodes]
}

resource "hcloud_server" "db" {
  count        = 2 # primary, replica
  name         = "${local.prefix}-db-${count.index + 1}"
  server_type  = local.size.db
  image        = var.image
  location     = var.location
  ssh_keys     = [hcloud_ssh_key.admin.id]
  firewall_ids = [hcloud_firewall.swarm.id]
  labels       = merge(local.labels, { role = "db" })
  network {
    network_id = hcloud_network.private.id
    ip         = "10.0.1.${50 + count.index}"
  }
  depends_on = [hcloud_network_subnet.nodes]
}

resource "hcloud_server" "nfs" {
  name         = "${local.prefix}-nfs"
  server_type  = local.size.nfs
  image        = var.image
  location     = var.location
  ssh_keys     = [hcloud_ssh_key.admin.id]
  firewall_ids = [hcloud_firewall.swarm.id]
  labels       = merge(local.labels, { role = "nfs" })
  network {
    network_id = hcloud_network.private.id
    ip         = "10.0.1.20"
  }
  depends_on = [hcloud_network_subnet.nodes]
}

# Garage (site files): three storage nodes, one copy of every object on each, spread over
# hosts, each with its own volume (ansible/storage.yml formats and mounts it at /srv/garage;
# the Swarm label garage=N pins service garage-N to node N).
resource "hcloud_placement_group" "storage" {
  name   = "${local.prefix}-storage-spread"
  type   = "spread"
  labels = local.labels
}

resource "hcloud_server" "storage" {
  count              = 3 # replication_factor = 3 (deploy/garage/garage.toml)
  name               = "${local.prefix}-storage-${count.index + 1}"
  server_type        = local.size.storage
  image              = var.image
  location           = var.location
  ssh_keys           = [hcloud_ssh_key.admin.id]
  placement_group_id = hcloud_placement_group.storage.id
  firewall_ids       = [hcloud_firewall.swarm.id]
  labels             = merge(local.labels, { role = "storage" })
  network {
    network_id = hcloud_network.private.id
    ip         = "10.0.1.${70 + count.index}"
  }
  depends_on = [hcloud_network_subnet.nodes]
}

resource "hcloud_volume" "garage" {
  count             = 3
  name              = "${local.prefix}-garage-${count.index + 1}"
  size              = local.size.garage_gb
  location          = var.location
  delete_protection = var.environment == "prod"
  labels            = merge(local.labels, { role = "storage" })
}

resource "hcloud_volume_attachment" "garage" {
  count     = 3
  volume_id = hcloud_volume.garage[count.index].id
  server_id = hcloud_server.storage[count.index].id
  automount = false # ansible/storage.yml mounts it at /srv/garage
}
