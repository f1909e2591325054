package bootstrap

import (
	"fmt"
	"strings"
)

// readme tells how to register each script with its platform. The scripts'
// own URLs are not known here (they are published later, if at all), so
// the commands carry placeholders.
func readme(s *settings, p *plan) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Node bootstrap scripts for %s, written by sparkenv for %s.\n\n", p.Subject, p.Target)
	if p.Mode == "image" {
		fmt.Fprintf(&b, "Each script downloads the squashfs image\n  %s\n(sha256 %s, %d bytes), verifies it, keeps it as\n/var/lib/sparkenv/images/%s, mounts it read-only at %s\n(a loop mount, or squashfuse where loop devices are unavailable) and records the\nmount in /etc/fstab. A node that already has this image mounted there is left\nunchanged. Python is then %s/bin/python.\n\n",
			p.ImageURL, p.ImageSHA, p.ImageSize, p.ImageFile, p.MountPoint, p.MountPoint)
	} else {
		fmt.Fprintf(&b, "Each script installs environment %q (%d packages, pinned exactly) into %s\nfrom the conda mirror published at\n  %s\nwith installer %q (sparkenv: the sparkenv binary, no solving; conda: the\nnode's conda with the explicit file; auto: conda when the node has it).\nThe pinned lists are embedded in the scripts and also written here:\n  %s  (sparkenv install --lock %s --env %s --prefix %s)\n  %s  (conda create -p %s --file %s)\nA node whose %s already holds this lock is left unchanged.\n\n",
			p.EnvName, p.Packages, p.Prefix, p.ChannelRoot, p.Installer,
			p.LockName, p.LockName, p.EnvName, p.Prefix, p.ExplicitName, p.Prefix, p.ExplicitName, p.Prefix)
	}
	b.WriteString("Upload the scripts next to your other artifacts, then register them:\n\n")
	for _, pl := range s.Platforms {
		name := ScriptName[pl]
		switch pl {
		case Yandex:
			fmt.Fprintf(&b, "Yandex Data Proc (%s): add an initialization action whose URI is\nthe script's https:// or s3a:// URL, e.g. in the console, or\n  yc dataproc cluster create ... --initialization-action uri=s3a://BUCKET/PATH/%s,timeout=600\nIt runs as root on every node, nodes added by autoscaling included.\n\n", name, name)
		case Dataproc:
			fmt.Fprintf(&b, "Google Dataproc (%s): copy it to Cloud Storage and pass\n  gcloud dataproc clusters create CLUSTER ... --initialization-actions gs://BUCKET/PATH/%s --initialization-action-timeout 10m\nIt runs as root on every node; the node's role is only logged.\n\n", name, name)
		case EMR:
			fmt.Fprintf(&b, "AWS EMR (%s): pass\n  aws emr create-cluster ... --bootstrap-actions Path=s3://BUCKET/PATH/%s,Name=sparkenv\nIt runs as the hadoop user and uses sudo for the privileged steps.\n\n", name, name)
		}
	}
	b.WriteString("Every script logs to /var/log/sparkenv-bootstrap.log (SPARKENV_LOG), retries\ndownloads, verifies sha256 digests and, when it fails, says which step failed.\nThe comment at the top of each script lists the environment variables that move\nits paths (SPARKENV_ROOT, SPARKENV_STATE_DIR, ...) for testing.\n")
	return []byte(b.String())
}
