"""Stage 1-2: a source tree (path or git URL@ref) rendered with kustomize into manifests, cached by what each render reads."""
