#!/bin/sh
# photosim: "Find similar photos" for Nautilus (right-click > Scripts).
# Installed by `photosim integrate install`; `photosim integrate remove` deletes it.
[ "$#" -ge 1 ] || exit 0
case $1 in
    /* | file:*) target=$1 ;;
    *) target=$PWD/$1 ;;
esac
exec photosim --find-similar --untrusted-args "$target"
