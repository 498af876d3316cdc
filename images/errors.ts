/** An error of the image builder whose message is meant for a person: printed as is, without a stack trace. */
export class ImageBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageBuildError';
  }
}
