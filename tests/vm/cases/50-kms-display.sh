# The HDMI-out's KMS path against bochs-drm (qemu's standard VGA): a mode set with two buffers
# and frames page-flipped between them (what is scanned out read back), and the call: a decoded
# H.264 share shown full screen, the display unplugged and plugged back through the
# connector's sysfs status, the call shown again; the card itself taken away (its driver
# unbound from the PCI device) and bound back, the call shown on the new card.
ls /dev/dri
# bochs-drm has no overlay plane: the call is composed by the CPU, and the reason is checked.
ROOMBOX_EXPECT_NO_VIDEO_PLANE="no overlay plane takes YUV420" \
  ROOMBOX_DRM_DIR=/dev/dri bash ../unit-tests.sh kms_
