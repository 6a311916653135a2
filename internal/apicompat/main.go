// Command apicompat checks that the module's exported API keeps the promise
// of its module path: nothing a program written against the official
// memphis.go v1.3.2 used may stop compiling. It runs
// golang.org/x/exp/cmd/apidiff (at a pinned version, built into a temporary
// directory, so go.mod gains nothing) on v1.3.2 and on the working tree, and
// fails on any incompatible change that the accepted file does not list
// with its reason, and on any listed one apidiff no longer reports.
//
//	go run ./internal/apicompat -apidiff v0.0.0-... -accepted internal/apicompat/accepted.txt [-official DIR]
//
// Without -official, v1.3.2 comes from the Go module proxy (go mod
// download), so the check needs no checkout of the official repository.
// `make apicompat` runs it from the repository's root.
//
// The accepted file lists one change per entry: the line apidiff prints
// ("- Name: what changed"), then the reason on the indented lines below it.
// Lines starting with # are comments.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

const module = "github.com/memphisdev/memphis.go"

func main() {
	apidiffVersion := flag.String("apidiff", "", "version of golang.org/x/exp to run apidiff from (required)")
	version := flag.String("version", "v1.3.2", "the official release to compare against")
	official := flag.String("official", "", "a checkout of that release; default: the module proxy's copy")
	acceptedPath := flag.String("accepted", "", "the file of accepted incompatible changes (required)")
	flag.Parse()
	if *apidiffVersion == "" || *acceptedPath == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*apidiffVersion, *version, *official, *acceptedPath, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "apicompat:", err)
		os.Exit(1)
	}
}

func run(apidiffVersion, version, official, acceptedPath string, out io.Writer) error {
	f, err := os.ReadFile(acceptedPath)
	if err != nil {
		return err
	}
	accepted, err := parseAccepted(string(f))
	if err != nil {
		return fmt.Errorf("%s: %w", acceptedPath, err)
	}
	if official == "" {
		if official, err = download(version); err != nil {
			return err
		}
	}
	if err := checkModule(official); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "apicompat")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	install := exec.Command("go", "install", "golang.org/x/exp/cmd/apidiff@"+apidiffVersion)
	install.Env = append(os.Environ(), "GOBIN="+tmp)
	if b, err := install.CombinedOutput(); err != nil {
		return fmt.Errorf("installing apidiff %s: %w\n%s", apidiffVersion, err, b)
	}
	apidiff := filepath.Join(tmp, "apidiff")
	oldAPI, newAPI := filepath.Join(tmp, "old.api"), filepath.Join(tmp, "new.api")
	if _, err := command(official, apidiff, "-w", oldAPI, module); err != nil {
		return fmt.Errorf("reading the API of %s at %s: %w", version, official, err)
	}
	if _, err := command("", apidiff, "-w", newAPI, module); err != nil {
		return fmt.Errorf("reading the API of the working tree: %w", err)
	}
	report, err := command("", apidiff, "-incompatible", oldAPI, newAPI)
	if err != nil {
		return err
	}
	changes := parseReport(report)
	unaccepted, stale := compare(changes, accepted)
	fmt.Fprintf(out, "apicompat: %d incompatible changes against %s (%s), %d of them accepted in %s\n",
		len(changes), version, official, len(changes)-len(unaccepted), acceptedPath)
	for _, c := range changes {
		mark := "accepted"
		if slices.Contains(unaccepted, c) {
			mark = "NOT ACCEPTED"
		}
		fmt.Fprintf(out, "  %s  [%s]\n", c, mark)
	}
	var errs []error
	if len(unaccepted) > 0 {
		errs = append(errs, fmt.Errorf("%d incompatible changes against %s: restore what they removed or changed, "+
			"or list them in %s with the reason they cannot be kept", len(unaccepted), version, acceptedPath))
	}
	for _, s := range stale {
		errs = append(errs, fmt.Errorf("%s lists %q, which apidiff no longer reports: remove it", acceptedPath, s))
	}
	return errors.Join(errs...)
}

// download fetches the official release through the module proxy and
// returns its directory in the module cache.
func download(version string) (string, error) {
	// On failure go mod download still prints the JSON, with the reason in
	// its Error field.
	b, runErr := command("", "go", "mod", "download", "-json", module+"@"+version)
	var info struct{ Dir, Error string }
	if err := json.Unmarshal([]byte(b), &info); err != nil {
		return "", errors.Join(fmt.Errorf("downloading %s@%s: %w", module, version, err), runErr)
	}
	if info.Error != "" || info.Dir == "" || runErr != nil {
		return "", fmt.Errorf("downloading %s@%s: %s %v", module, version, info.Error, runErr)
	}
	return info.Dir, nil
}

// checkModule makes sure dir holds the module this one must stay
// compatible with, not some other checkout.
func checkModule(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return fmt.Errorf("the official checkout: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if strings.TrimSpace(first) != "module "+module {
		return fmt.Errorf("%s is not a checkout of %s (its go.mod starts %q)", dir, module, first)
	}
	return nil
}

// command runs name in dir (the current directory if empty) and returns its
// standard output, also when it fails.
func command(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// parseReport returns the changes apidiff reported, one per "- " line.
func parseReport(report string) []string {
	var changes []string
	for _, line := range strings.Split(report, "\n") {
		if c, ok := strings.CutPrefix(strings.TrimRight(line, " \t\r"), "- "); ok {
			changes = append(changes, c)
		}
	}
	return changes
}

// parseAccepted reads the accepted file into change → reason. Every change
// must carry a reason, and none may be listed twice.
func parseAccepted(text string) (map[string]string, error) {
	accepted := map[string]string{}
	var cur string
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "- "):
			cur = strings.TrimPrefix(line, "- ")
			if _, dup := accepted[cur]; dup {
				return nil, fmt.Errorf("line %d: %q is listed twice", n, cur)
			}
			accepted[cur] = ""
		case line[0] == ' ' || line[0] == '\t':
			if cur == "" {
				return nil, fmt.Errorf("line %d: a reason before any change", n)
			}
			accepted[cur] = strings.TrimSpace(accepted[cur] + " " + strings.TrimSpace(line))
		default:
			return nil, fmt.Errorf("line %d: want \"- <change>\", an indented reason or a # comment: %q", n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for c, why := range accepted {
		if why == "" {
			return nil, fmt.Errorf("%q has no reason", c)
		}
	}
	return accepted, nil
}

// compare returns the reported changes not accepted, and the accepted ones
// no longer reported, each sorted.
func compare(changes []string, accepted map[string]string) (unaccepted, stale []string) {
	for _, c := range changes {
		if _, ok := accepted[c]; !ok {
			unaccepted = append(unaccepted, c)
		}
	}
	for c := range accepted {
		if !slices.Contains(changes, c) {
			stale = append(stale, c)
		}
	}
	slices.Sort(unaccepted)
	slices.Sort(stale)
	return unaccepted, stale
}
