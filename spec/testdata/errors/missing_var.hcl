# ENV: SPARKENV_VAR_given=ok
variable "region" { # ERROR: No value for required variable
  type = string
}

variable "bucket" { # ERROR: No value for required variable
  description = "Where to publish."
}

variable "given" {
  type = string
}

variable "zone" {
  type = strin # ERROR: Invalid type specification | Did you mean "string"?
}

locals {
  # Unknown because var.region has no value: no further diagnostic.
  url = "s3://${var.bucket}/${var.region}"
}
