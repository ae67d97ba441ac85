package main

import (
	"context"
	"errors"
	"io"

	"github.com/dvgate/dvgate/csdl"
	"github.com/dvgate/dvgate/entitydefs"
)

// download fetches $metadata and the EntityDefinitions of the selected
// tables from the org, signing in with the AZURE_* environment.
//
// TODO: implement once package dataverse provides Conn.Get.
func download(ctx context.Context, o options, stderr io.Writer) (*csdl.Model, *entitydefs.Definitions, error) {
	return nil, nil, errors.New("URL input needs the dataverse package, which is not available yet; download $metadata to a file and pass its path")
}
