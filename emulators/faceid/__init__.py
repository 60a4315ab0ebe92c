"""Emulator of a certified face-verification service (Tencent Cloud FaceID, ImageRecognitionV2)."""
