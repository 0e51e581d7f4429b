/*
 * pngtool: PNG helpers for the C API's ctest comparisons.
 *
 *   pngtool cmp A.png B.png        decoded samples equal (exit 0) or not (1);
 *                                  prints the pixel, foreground and
 *                                  differing counts. Masks are compared as
 *                                  images, not files: Go's and libpng's
 *                                  encoders compress differently.
 *   pngtool derive GREY.png RGB.png ODD.png
 *                                  from an 8-bit grey image, an RGB one of
 *                                  another size (the channels unlike each
 *                                  other) and a grey one of an odd size, both
 *                                  by nearest-neighbour sampling: inputs that
 *                                  exercise resizing and colour conversion.
 */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  png_uint_32 w, h, channels;
  unsigned char *px;
} image;

/* load reads raw 8-bit samples (expanded, alpha and 16 bits stripped). */
static int load(const char *path, image *img) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 0;
  }
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    fprintf(stderr, "%s: not a readable PNG\n", path);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return 0;
  }
  png_init_io(png, f);
  png_read_png(png, info, PNG_TRANSFORM_EXPAND | PNG_TRANSFORM_STRIP_16 | PNG_TRANSFORM_STRIP_ALPHA | PNG_TRANSFORM_PACKING,
               NULL);
  img->w = png_get_image_width(png, info);
  img->h = png_get_image_height(png, info);
  img->channels = png_get_channels(png, info);
  png_bytepp rows = png_get_rows(png, info);
  size_t row = (size_t)img->w * img->channels;
  img->px = malloc(row * img->h);
  for (png_uint_32 y = 0; y < img->h; y++) memcpy(img->px + y * row, rows[y], row);
  png_destroy_read_struct(&png, &info, NULL);
  fclose(f);
  return 1;
}

static int save(const char *path, const image *img) {
  png_image out;
  memset(&out, 0, sizeof out);
  out.version = PNG_IMAGE_VERSION;
  out.width = img->w;
  out.height = img->h;
  out.format = img->channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  if (!png_image_write_to_file(&out, path, 0, img->px, 0, NULL)) {
    fprintf(stderr, "%s: %s\n", path, out.message);
    return 0;
  }
  return 1;
}

/* sample makes an ow*oh image of channels from grey src by nearest
   neighbour; colour channels are distinct functions of the grey level. */
static image sample(const image *src, png_uint_32 ow, png_uint_32 oh, png_uint_32 channels) {
  image o = {ow, oh, channels, malloc((size_t)ow * oh * channels)};
  for (png_uint_32 y = 0; y < oh; y++)
    for (png_uint_32 x = 0; x < ow; x++) {
      unsigned v = src->px[(size_t)(y * src->h / oh) * src->w + x * src->w / ow];
      unsigned char *p = o.px + ((size_t)y * ow + x) * channels;
      if (channels == 1) {
        p[0] = (unsigned char)v;
      } else {
        p[0] = (unsigned char)v;
        p[1] = (unsigned char)(v * 3 / 4);
        p[2] = (unsigned char)(v + 20 > 255 ? 255 : v + 20);
      }
    }
  return o;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "cmp") == 0) {
    image a, b;
    if (!load(argv[2], &a) || !load(argv[3], &b)) return 2;
    if (a.w != b.w || a.h != b.h || a.channels != b.channels) {
      fprintf(stderr, "%s is %ux%ux%u, %s %ux%ux%u\n", argv[2], a.w, a.h, a.channels, argv[3], b.w, b.h, b.channels);
      return 1;
    }
    size_t n = (size_t)a.w * a.h * a.channels, diff = 0, fg = 0;
    for (size_t i = 0; i < n; i++) {
      diff += a.px[i] != b.px[i];
      fg += a.px[i] != 0;
    }
    printf("%zu pixels, %zu foreground, %zu differ\n", n, fg, diff);
    return diff == 0 ? 0 : 1;
  }
  if (argc == 5 && strcmp(argv[1], "derive") == 0) {
    image g;
    if (!load(argv[2], &g)) return 2;
    if (g.channels != 1) {
      fprintf(stderr, "%s: want a grey PNG\n", argv[2]);
      return 2;
    }
    image rgb = sample(&g, g.w + 22, g.h - 10, 3), odd = sample(&g, g.w * 3 / 2 + 1, g.h * 5 / 4 + 3, 1);
    return save(argv[3], &rgb) && save(argv[4], &odd) ? 0 : 2;
  }
  fprintf(stderr, "usage: pngtool cmp A.png B.png | pngtool derive GREY.png RGB.png ODD.png\n");
  return 2;
}
