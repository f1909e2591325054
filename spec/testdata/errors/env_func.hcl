# ENV: HOME=/root
variable "home" {
  default = env("HOME")
}

variable "token" {
  default = env("TOKEN", "none")
}

locals {
  user = env("USER") # ERROR: Function env only allowed in variable defaults
}

environment "ml" {
  platform = "linux-64"
  channels = [env("CHANNEL")] # ERROR: Function env only allowed in variable defaults
}

target "pyfiles" "app" {
  output = "${env("OUT")}/app.zip" # ERROR: Function env only allowed in variable defaults
}
