"""Small helpers every stage uses: atomic files and checksums, names any tool accepts, child
processes that end with the build. They import nothing else of attnslides, so any subsystem may
use them without pointing up the tree."""
