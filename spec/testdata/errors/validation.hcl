# VAR: python=2.7
# EXPECT: Invalid value for variable
variable "python" {
  type = string
  validation {
    condition     = can(regex("^3\\.", var.python))
    error_message = "sparkenv environments need Python 3."
  }
}

variable "workers" {
  type    = number
  default = 0 # ERROR: Invalid value for variable
  validation {
    condition     = var.workers > 0
    error_message = "workers must be positive."
  }
  validation {
    condition     = var.workers < 100
    error_message = "at most 99 workers."
  }
}

variable "zone" {
  default = "a"
  validation {
    condition     = var.zone != var.python # ERROR: Invalid reference in variable validation
    error_message = "zones differ."
  }
}

variable "name" {
  default = "x"
  validation {
    condition     = "yes" # ERROR: Invalid validation condition
    error_message = "never."
  }
}
