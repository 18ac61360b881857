# Seed "Port Mappings": 80/443 public; 8404, 9090, 3001, 8080, 5432 internal (admin CIDRs);
# Swarm control/data plane and NFS only inside the private network.
resource "hcloud_firewall" "edge" {
  name   = "${local.prefix}-edge"
  labels = local.labels

  rule {
    description = "HTTP"
    direction   = "in"
    protocol    = "tcp"
    port        = "80"
    source_ips  = ["0.0.0.0/0", "::/0"]
  }
  rule {
    description = "HTTPS"
    direction   = "in"
    protocol    = "tcp"
    port        = "443"
    source_ips  = ["0.0.0.0/0", "::/0"]
  }
  dynamic "rule" {
    for_each = { haproxy_stats = "8404", prometheus = "9090", grafana = "3001", cadvisor = "8080", postgres = "5432" }
    content {
      description = "internal ${rule.key}"
      direction   = "in"
      protocol    = "tcp"
      port        = rule.value
      source_ips  = var.admin_cidrs
    }
  }
}

resource "hcloud_firewall" "swarm" {
  name   = "${local.prefix}-swarm"
  labels = local.labels

  rule {
    description = "SSH from admins"
    direction   = "in"
    protocol    = "tcp"
    port        = "22"
    source_ips  = var.admin_cidrs
  }
  rule {
    description = "Swarm cluster management"
    direction   = "in"
    protocol    = "tcp"
    port        = "2377"
    source_ips  = ["10.0.0.0/16"]
  }
  rule {
    description = "Swarm node gossip tcp"
    direction   = "in"
    protocol    = "tcp"
    port        = "7946"
    source_ips  = ["10.0.0.0/16"]
  }
  rule {
    description = "Swarm node gossip udp"
    direction   = "in"
    protocol    = "udp"
    port        = "7946"
    source_ips  = ["10.0.0.0/16"]
  }
  rule {
    description = "Overlay VXLAN"
    direction   = "in"
    protocol    = "udp"
    port        = "4789"
    source_ips  = ["10.0.0.0/16"]
  }
  rule {
    description = "Overlay encryption (IPsec ESP)"
    direction   = "in"
    protocol    = "esp"
    source_ips  = ["10.0.0.0/16"]
  }
  rule {
    description = "NFSv4"
    direction   = "in"
    protocol    = "tcp"
    port        = "2049"
    source_ips  = ["10.0.1.0/24"]
  }
}
