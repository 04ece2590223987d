// kubectl, for the chart checks on machines that have none (deploy/chart/test). The same program
// as k8s.io/kubernetes/cmd/kubectl, built from k8s.io/kubectl at the version Helm's module pins
// (the k8s.io/kubernetes module itself cannot be required without pinning every staging module,
// as e2e/go does).
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
