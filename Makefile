# make image: the container image (see deploy/Dockerfile), from a clone.
.PHONY: image
image:
	deploy/build-image $(TAG)
