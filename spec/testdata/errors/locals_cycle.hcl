locals {
  a = "${local.b}-x" # ERROR: Cycle in local values | local.a → local.b → local.c → local.a
  b = upper(local.c)
  c = local.a
  self = [local.self] # ERROR: Cycle in local values | local.self → local.self
}

locals {
  # Depends on the cycle but is not part of it: no further diagnostic.
  d = local.a
  e = "fine"
}

target "pyfiles" "app" {
  name = local.d
}
