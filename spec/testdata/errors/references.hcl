variable "region" {
  default = "eu-west-1"
}

locals {
  bucket = "dist-${var.regoin}" # ERROR: Reference to undeclared input variable | Did you mean "region"?
  name   = local.nmae # ERROR: Reference to undeclared local value
  root   = path.cwd # ERROR: Invalid reference
  other  = foo.bar # ERROR: Invalid reference
}

environment "ml" {
  platform = "linux-64"
  channels = ["conda-forge"]
}

target "conda_pack" "ml" {
  environment = environment.mll # ERROR: Reference to undeclared environment
  depends_on  = [target.pyfiles.ap] # ERROR: Reference to undeclared target | Did you mean "target.pyfiles.app"?
}

target "pyfiles" "app" {
  depends_on = [var.region] # ERROR: Invalid depends_on entry
  nested {
    from = publish.s3.prod # ERROR: Reference to undeclared publish
  }
}

publish "local" "dist" {
  targets    = [target.conda_pack.ml, environment.ml] # ERROR: Invalid targets entry
  depends_on = ["target.pyfiles.app"] # ERROR: Invalid depends_on entry
}

publish "local" "partial" {
  targets = [target.conda_pack] # ERROR: Invalid reference
}

publish "local" "nothing" { # ERROR: Missing required argument
  path = "x"
}

publish "local" "empty" {
  targets = [] # ERROR: No targets to publish
}
