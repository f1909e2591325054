# VAR: Region=eu
environment "ML-env" { # ERROR: Invalid environment name
  platform = "linux-64"
  channels = ["conda-forge"]
}

target "conda-pack" "ml" { # ERROR: Invalid target kind
}

target "conda_pack" "2nd" { # ERROR: Invalid target name
}

target "pyfiles" { # ERROR: Missing name for target
}

environment "a" "b" { # ERROR: Extraneous label for environment
  platform = "linux-64"
  channels = ["conda-forge"]
}

variable { # ERROR: Missing name for variable
}

# References to blocks rejected above are not reported again.
target "pyfiles" "app" {
  environment = environment.ML-env
  depends_on  = [target.conda-pack.ml]
}

variable "Region" { # ERROR: Invalid variable name
  default = "x"
}

locals {
  # Evaluating references to rejected blocks gives no further diagnostics.
  env    = environment.ML-env
  pack   = target.conda-pack.ml
  region = var.Region
}
