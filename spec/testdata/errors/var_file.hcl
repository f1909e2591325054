# VARFILE: varfiles/bad_types.hcl
variable "workers" {
  type = number
}

variable "tags" {
  type = map(string)
}

variable "region" {
  default = "us-east-1"
}

variable "ports" {
  type    = list(number)
  default = []
}
