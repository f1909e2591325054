locals {
  now    = timestamp() # ERROR: Call to unknown function
  id     = uuid() # ERROR: Call to unknown function
  lower  = lowr("X") # ERROR: Call to unknown function
  data   = file("does-not-exist.txt") # ERROR: Invalid function argument
  files  = fileset(".", "[") # ERROR: Invalid function argument
  ok     = join(",", sort(["b", "a"]))
}

variable "x" {
  default = "${path.root}/x" # ERROR: Reference in variable default
}
