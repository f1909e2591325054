environment "ml" {
  platform = "linux-64"
  channels = ["conda-forge"]
}

environment "ml" { # ERROR: Duplicate environment | already declared at duplicates.hcl:1,1
  platform = "linux-64"
  channels = ["conda-forge"]
}

target "pyfiles" "app" {
}

target "pyfiles" "app" { # ERROR: Duplicate target | already declared at duplicates.hcl:11,1
}

target "pyfiles" "other" {
}

publish "local" "dist" {
  targets = [target.pyfiles.app]
}

publish "local" "dist" { # ERROR: Duplicate publish
  targets = [target.pyfiles.other]
}

variable "x" {
  default = 1
}

variable "x" { # ERROR: Duplicate variable
  default = 2
}

locals {
  a = 1
}

locals {
  a = 2 # ERROR: Duplicate local value
}
