variable "hcloud_token" {
  description = "Hetzner Cloud API token (export TF_VAR_hcloud_token)"
  type        = string
  sensitive   = true
}

variable "environment" {
  description = "dev, staging or prod"
  type        = string
  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "location" {
  description = "Hetzner location"
  type        = string
  default     = "fsn1"
}

variable "image" {
  description = "Server image (seed: Ubuntu Server 22.04 LTS)"
  type        = string
  default     = "ubuntu-22.04"
}

variable "ssh_public_key" {
  description = "Public key installed for the admin user"
  type        = string
}

variable "admin_cidrs" {
  description = "Addresses allowed to reach SSH and the internal ports (stats, Grafana, Prometheus)"
  type        = list(string)
}

variable "manager_count" {
  description = "Swarm managers (odd: 1 or 3)"
  type        = number
  default     = 3
}

# Seed "Resource Allocation per Environment": server types sized per environment.
# storage: the three Garage nodes (site files, HOSTING_BLOB_STORE=s3), each with a volume of
# garage_gb (every node holds a full copy: usable space = one volume).
variable "sizes" {
  description = "Server type per role and environment"
  type = map(object({
    manager   = string
    app       = string
    db        = string
    nfs       = string
    storage   = string
    garage_gb = number
    workers   = number
  }))
  default = {
    dev     = { manager = "cx22", app = "cx22", db = "cx22", nfs = "cx22", storage = "cx22", garage_gb = 20, workers = 1 }
    staging = { manager = "cx22", app = "cx32", db = "cx32", nfs = "cx22", storage = "cx22", garage_gb = 50, workers = 2 }
    prod    = { manager = "cx32", app = "cx32", db = "cx42", nfs = "cx32", storage = "cx32", garage_gb = 200, workers = 3 }
  }
}
