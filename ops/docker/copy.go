package docker

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
)

// CopyFromImage copies srcPath out of image into destDir, which is created
// if needed. A directory's contents land directly in destDir (like
// `docker cp ctr:/src/. destDir`); a file lands as destDir/<its name>. Only
// regular files and directories are accepted, and no entry may leave
// destDir. The image is never run: a stopped container is created for the
// copy and always removed.
func (e *Engine) CopyFromImage(ctx context.Context, image, srcPath, destDir string) (err error) {
	created, err := e.cli.ContainerCreate(ctx,
		&container.Config{
			Image:      image,
			Entrypoint: []string{"/never-started"}, // images without a command can still be created
			Labels:     map[string]string{"com.togather.chatops.purpose": "copy-from-image"},
		},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("copy from image %s: %w", image, ErrImageNotFound)
	}
	if err != nil {
		return fmt.Errorf("copy from image %s: create container: %w", image, e.why(err))
	}
	defer func() {
		err = errors.Join(err, e.remove(context.WithoutCancel(ctx), created.ID))
	}()

	rc, stat, err := e.cli.CopyFromContainer(ctx, created.ID, srcPath)
	if err != nil {
		return fmt.Errorf("copy %s from image %s: %w", srcPath, image, e.why(err))
	}
	defer rc.Close()
	if err := extractTar(rc, stat.Mode.IsDir(), destDir); err != nil {
		return fmt.Errorf("copy %s from image %s: %w", srcPath, image, e.why(err))
	}
	return nil
}

// extractTar writes the regular files and directories of archive r into
// destDir. When isDir, the archive's first path element (the copied
// directory itself) is dropped.
func extractTar(r io.Reader, isDir bool, destDir string) error {
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(destDir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name := path.Clean(hdr.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("archive entry %q escapes the destination", hdr.Name)
		}
		if isDir {
			var ok bool
			if _, name, ok = strings.Cut(name, "/"); !ok {
				continue // the copied directory itself: destDir
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, 0o755)
		case tar.TypeReg:
			err = writeFile(root, name, hdr.FileInfo().Mode().Perm(), tr)
		default:
			err = fmt.Errorf("archive entry %q: unsupported type %q (only files and directories are copied)", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			return err
		}
	}
}

func writeFile(root *os.Root, name string, perm os.FileMode, content io.Reader) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, content); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}
