environment   = "prod"
admin_cidrs   = ["203.0.113.0/24"]
manager_count = 3
