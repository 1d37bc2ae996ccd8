"""Content stage: a newsletter YAML file becomes a validated `Newsletter` (source language).

`load_newsletter(path)` reads the file with the position-keeping YAML reader
(`yaml_positions`), validates it with the models (`model`) and says every
problem of the file at once, in a writer's words (`hints`), as one
`ContentError`. `paths` names places in a newsletter (error paths and text field
paths); `images` reads image files. Newsletter text is data: nothing here
renders or evaluates it.
"""
from postbode.content.images import image_size
from postbode.content.load import load_newsletter
from postbode.content.model import (Acknowledgement, Figure, Image, Link, Logo, Newsletter,
                                    Section)

__all__ = ["Acknowledgement", "Figure", "Image", "Link", "Logo", "Newsletter", "Section",
           "image_size", "load_newsletter"]
