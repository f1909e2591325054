environment "ml" {
  platform         = "linux64" # ERROR: Unknown platform | Did you mean "linux-64"?
  channels         = ["conda-forge"]
  dependecies      = ["numpy"] # ERROR: Unsupported argument | Did you mean "dependencies"?
  prefix           = "envs/ml" # ERROR: Prefix must be absolute
  channel_priority = "stricter" # ERROR: Invalid channel_priority
}

environment "empty" {
  platform = "osx-arm64"
  channels = [] # ERROR: No channels
  virtual_packages = {
    glibc  = "2.17" # ERROR: Invalid virtual package name
    __cuda = "12.2"
  }
}

environment "specs" {
  platform = "linux-aarch64"
  channels = ["conda-forge"]
  dependencies = [
    "python 3.11.*",
    "numpy@1.26", # ERROR: Invalid package spec
    "", # ERROR: Empty package spec
  ]
  pip = "requests" # ERROR: Invalid pip
}

environment "incomplete" { # ERROR: Missing required argument
  channels = ["conda-forge"]
}

variable "prefix" {
  type    = string
  default = null
}

environment "nulls" {
  platform = null # ERROR: Missing required argument
  channels = ["conda-forge"]
  prefix   = var.prefix
}
