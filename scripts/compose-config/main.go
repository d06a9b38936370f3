// compose-config loads a Compose file as `docker compose config` does, with the Compose Specification's own loader
// (github.com/compose-spec/compose-go, the library inside docker compose): it checks the file against the
// specification's schema, interpolates variables, checks that services name only defined secrets, volumes and
// networks, and prints the resolved model as YAML. No Docker engine is needed.
//
//	compose-config [--format json] FILE [FILE...]
//
// Exit status 1 with the loader's one-line error when the file is invalid.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func main() {
	files, asJSON := os.Args[1:], false
	if len(files) >= 2 && files[0] == "--format" && (files[1] == "json" || files[1] == "yaml") {
		files, asJSON = files[2:], files[1] == "json"
	}
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "usage: compose-config [--format json|yaml] FILE [FILE...]")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions(files, cli.WithOsEnv, cli.WithDotEnv, cli.WithName("op7"))
	if err == nil {
		var project *types.Project
		project, err = opts.LoadProject(context.Background())
		if err == nil {
			var out []byte
			if asJSON {
				out, err = project.MarshalJSON()
			} else {
				out, err = project.MarshalYAML()
			}
			if err == nil {
				_, err = os.Stdout.Write(out)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "compose-config: %v\n", err)
		os.Exit(1)
	}
}
