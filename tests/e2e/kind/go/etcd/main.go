// Command etcd is etcd's own entry point (etcdmain.Main), built here because the upstream
// main module replaces its sibling modules with relative paths; see go.mod.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
