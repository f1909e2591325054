# The root file; its relative paths resolve against this directory.
locals {
  root_text = file("root.txt")
  root_abs  = abspath("sub")
}

environment "ml" {
  platform = "linux-64"
  channels = ["conda-forge"]
}
