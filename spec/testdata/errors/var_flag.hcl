# VAR: workers=many
# VAR: tags=["a", 1]
# VAR: regoin=eu-west-1
# VAR: flags=[unclosed
# EXPECT: Invalid value for variable
# EXPECT: Invalid value for variable
# EXPECT: Invalid value for variable
# EXPECT: Value for undeclared variable
# ENV: SPARKENV_VAR_unknown=1
# EXPECT: Value for undeclared variable
variable "workers" {
  type    = number
  default = 4
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "flags" {
  type    = list(string)
  default = []
}

variable "region" {
  default = "us-east-1"
}
