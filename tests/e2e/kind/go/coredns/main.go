// Command coredns is CoreDNS with the plugins kubeadm's Corefile uses, compiled in the way
// CoreDNS documents for custom builds (import the plugins, call coremain.Run). The upstream
// main package links every plugin, cloud DNS SDKs included, which triples the build time.
package main

import (
	"github.com/coredns/coredns/coremain"

	// The plugins of kubeadm's default Corefile, plus log for debugging.
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func main() { coremain.Run() }
